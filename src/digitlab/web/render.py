"""The Jinja2 templates and `render`, shared by the pages and the sign-in page."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from digitlab.api.auth import viewer_state

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=HERE / "templates")


def render(
    request: Request, name: str, page: str, *, status_code: int = 200, **context: Any
) -> HTMLResponse:
    # `viewer` lets the navigation offer "Sign in" or "Sign out" when a viewer token is set.
    viewer = viewer_state(request, request.app.state.service.settings)
    return templates.TemplateResponse(
        request, name, {"page": page, "viewer": viewer} | context, status_code=status_code
    )
