"""Alembic migrations of the prediction store (run them with `digitlab db upgrade`)."""
