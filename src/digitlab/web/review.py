"""The Review page: a labeller works through the inputs that wait for a trusted label,
one at a time, with the keyboard (0-9 label, space skips, Backspace undoes).

The page itself is a frame; its script (static/review.js) reads the queue from
GET /api/v1/review and labels through the feedback path, signed in by the labeller
cookie that /login sets. Without DIGITLAB_LABELLER_TOKEN the page says labelling is off.
"""

from __future__ import annotations

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse

from digitlab.api.deps import ServiceDep
from digitlab.web.login import LabellerPageDep
from digitlab.web.render import render

router = APIRouter(include_in_schema=False)


@router.get("/review", response_class=HTMLResponse)
def review_page(request: Request, _labeller: LabellerPageDep, service: ServiceDep) -> HTMLResponse:
    return render(request, "review.html", "review")


def install(app: FastAPI) -> None:
    app.include_router(router)
