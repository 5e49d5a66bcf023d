"""The feedback loop: corrections exported as training data, and the retrain promotion policy."""
