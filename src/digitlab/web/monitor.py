"""The Monitor page: how the serving version (and the one before) does on live traffic
over the last hour, day or week; the same figures as `GET /api/v1/monitor`, drawn as
server-side SVG. Behind the viewer sign-in when a viewer token is set."""

from __future__ import annotations

import itertools
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse

from digitlab.api.deps import ServiceDep
from digitlab.api.monitor_report import WINDOWS, Window, build
from digitlab.store import db
from digitlab.web import charts
from digitlab.web.login import ViewerPageDep
from digitlab.web.pages import problems
from digitlab.web.render import render

router = APIRouter(include_in_schema=False)


def bin_names(edges: list[float]) -> list[str]:
    """'<0.5', '0.5-0.7', ..., '≥0.999': the confidence bins' labels, for the tables."""
    names = [f"<{edges[0]:g}"]
    names += [f"{lo:g}-{hi:g}" for lo, hi in itertools.pairwise(edges)]
    return [*names, f"≥{edges[-1]:g}"]


def short_bin_names(edges: list[float]) -> list[str]:
    """'<.5', '.5', '.7', ...: each bin by its lower edge, short enough for a chart axis."""
    return [f"<{edges[0]:g}".replace("0.", "."), *(f"{e:g}".replace("0.", ".") for e in edges)]


@router.get("/monitor", response_class=HTMLResponse)
def monitor_page(
    request: Request,
    _viewer: ViewerPageDep,
    service: ServiceDep,
    window: Annotated[Window, Query()] = "day",
) -> HTMLResponse:
    report = None
    try:
        with db.transaction(service.engine) as session:
            report = build(service.settings, session, window)
    except db.StoreError:
        pass  # the banner from `problems` says why
    panels = []
    for v in report.versions if report else []:
        names = bin_names(report.confidence_edges) if report else []
        panels.append(
            {
                "v": v,
                "mix_chart": charts.paired_bars(
                    [str(d) for d in range(10)],
                    v.class_mix,
                    v.training_mix,
                    title=f"Predicted digits of {v.version} vs the training mix",
                    live_name="predicted",
                    reference_name="training",
                ),
                "confidence_chart": charts.paired_bars(
                    short_bin_names(report.confidence_edges) if report else [],
                    [c / v.digits if v.digits else 0.0 for c in v.confidence_counts],
                    v.reference_confidence,
                    title=f"Confidence of {v.version} vs the test set",
                    live_name="live",
                    reference_name="test set",
                ),
                "bins": names,
            }
        )
    return render(
        request,
        "monitor.html",
        "monitor",
        problems=problems(service),
        report=report,
        panels=panels,
        window=window,
        windows=list(WINDOWS),
    )
