"""The Jinja2 templates and `render`, shared by the pages and the sign-in page."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from digitlab.api.auth import LABELLER_COOKIE, viewer_state

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=HERE / "templates")


def render(
    request: Request, name: str, page: str, *, status_code: int = 200, **context: Any
) -> HTMLResponse:
    # `viewer` lets the navigation offer "Sign in" or "Sign out" when a viewer token is set.
    settings = request.app.state.service.settings
    viewer = viewer_state(request, settings)
    if viewer == "open" and request.cookies.get(LABELLER_COOKIE):
        viewer = "ok"  # a signed-in labeller gets the "Sign out" button
    base = {"page": page, "viewer": viewer, "labelling": bool(settings.labeller_token)}
    return templates.TemplateResponse(request, name, base | context, status_code=status_code)
