"""/docs (Swagger UI) and /redoc (ReDoc) from this service's own files, not a CDN: they
work offline, and no script from elsewhere runs on the sign-in cookie's origin. The
assets are vendored in static/docs/ (swagger-ui-dist 5.35.0, Apache-2.0; redoc 2.5.4,
MIT; their licences beside them); the pages hold no inline script, so the
Content-Security-Policy (api/security.py) stays strict.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.responses import HTMLResponse

SWAGGER = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>{title} · API</title>
  <link rel="stylesheet" href="/static/docs/swagger-ui.css">
</head>
<body>
  <div id="swagger-ui" data-openapi-url="{openapi_url}"></div>
  <script src="/static/docs/swagger-ui-bundle.js"></script>
  <script src="/static/docs/swagger-init.js"></script>
</body>
</html>
"""

REDOC = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>{title} · API reference</title>
  <meta name="viewport" content="width=device-width, initial-scale=1">
</head>
<body>
  <redoc spec-url="{openapi_url}"></redoc>
  <script src="/static/docs/redoc.standalone.js"></script>
</body>
</html>
"""


def install(app: FastAPI) -> None:
    """Serve the two pages; create the app with `docs_url=None, redoc_url=None`."""
    values = {"title": app.title, "openapi_url": app.openapi_url or "/openapi.json"}

    @app.get("/docs", response_class=HTMLResponse, include_in_schema=False)
    def swagger_ui() -> HTMLResponse:
        return HTMLResponse(SWAGGER.format(**values))

    @app.get("/redoc", response_class=HTMLResponse, include_in_schema=False)
    def redoc() -> HTMLResponse:
        return HTMLResponse(REDOC.format(**values))
