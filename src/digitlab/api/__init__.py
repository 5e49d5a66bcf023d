"""The JSON API over HTTP (FastAPI): one router per resource, JSON errors, Prometheus
metrics. No torch here; `digitlab.app.create_app` serves it with the web pages."""
