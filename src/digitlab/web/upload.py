"""The reference project's upload form, `POST /upload`: the file in field `image`,
answered with a page (the JSON routes of the reference are in digitlab.api.reference)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from digitlab.api.deps import ServiceDep
from digitlab.api.reference import (
    BAD_REFERENCE_INPUT,
    over_limit,
    predict_one,
    problem,
    read_upload,
)
from digitlab.web.render import render

router = APIRouter(include_in_schema=False)


@router.post("/upload", response_class=HTMLResponse)
async def upload(request: Request, service: ServiceDep) -> HTMLResponse:
    """The reference's upload form: the file in `image`, answered with a page."""
    if limited := over_limit(request, service):
        message, headers = limited
        page = render(request, "upload.html", "upload", status_code=429, error=message)
        page.headers.update(headers)
        return page
    try:
        found = await read_upload(request, ("image", "file"))
        result = await predict_one(request, service, found)
    except BAD_REFERENCE_INPUT as exc:
        status, message = problem(exc)
        return render(request, "upload.html", "upload", status_code=status, error=message)
    return render(request, "upload.html", "upload", result=result)
