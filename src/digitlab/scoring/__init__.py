"""Predict and record in bulk: a split or a folder of images, through a version, into the store."""
