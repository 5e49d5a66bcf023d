"""Experiment tracking: every training run recorded with its metrics, and sweeps over recipes."""
