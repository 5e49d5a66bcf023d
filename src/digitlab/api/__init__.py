"""The prediction service over HTTP (FastAPI): `create_app(settings)` in `app.py`, one
router per resource, JSON errors, Prometheus metrics. No torch here."""
