"""The Runs page: recorded training runs with their lineage; tick two or more and
"Compare" (GET /runs?id=1&id=2) overlays their curves and sets their configs side by
side, the differing keys highlighted. A plain form, so it works from the keyboard and
without JavaScript. Behind the viewer sign-in when a viewer token is set."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse

from digitlab.api.deps import ServiceDep
from digitlab.api.runs import MAX_COMPARED, MAX_RUN_ID, differing_keys, run_rows
from digitlab.store import db, runs
from digitlab.web import charts
from digitlab.web.login import ViewerPageDep
from digitlab.web.pages import problems
from digitlab.web.render import render

router = APIRouter(include_in_schema=False)
LISTED = 100


def curves(compared: list[dict[str, Any]], key: str) -> list[tuple[str, list[tuple[float, float]]]]:
    """One series per run (per member for ensembles) of `key` by epoch."""
    series = []
    for run in compared:
        members = sorted({e["member"] for e in run["epochs"]})
        for member in members:
            points = [
                (float(e["epoch"]), float(e[key]))
                for e in run["epochs"]
                if e["member"] == member and e[key] is not None
            ]
            name = f"run {run['id']}" + (f" member {member}" if len(members) > 1 else "")
            series.append((name, points))
    return series


@router.get("/runs", response_class=HTMLResponse)
def runs_page(
    request: Request,
    _viewer: ViewerPageDep,
    service: ServiceDep,
    run_id: Annotated[list[int], Query(alias="id")] = [],  # noqa: B006 (FastAPI copies it)
) -> HTMLResponse:
    listed: list[dict[str, Any]] = []
    compared: list[dict[str, Any]] = []
    message = None
    selected = list(dict.fromkeys(run_id))[:MAX_COMPARED]
    # An id past the column's range names no run, and would not bind (a 500 on SQLite).
    impossible = [i for i in selected if not 1 <= i <= MAX_RUN_ID]
    try:
        with db.transaction(service.engine) as session:
            listed = run_rows(session, runs.list_runs(session, limit=LISTED))
            if impossible:
                message = f"there is no run {impossible[0]}; pick runs from the list."
            elif len(selected) == 1:
                message = "Tick at least two runs to compare them."
            elif selected:
                try:
                    compared = run_rows(session, runs.get_runs(session, ids=selected))
                except ValueError as exc:
                    message = f"{exc}; pick runs from the list."
    except db.StoreError:
        pass  # the banner from `problems` says why
    differing = differing_keys([r["config"] for r in compared]) if compared else []
    keys = sorted({k for r in compared for k in r["config"]})
    figures = []
    if compared:
        figures = [
            charts.lines(
                curves(compared, "val_acc"), title="Validation accuracy by epoch", y_format=".1%"
            ),
            charts.lines(
                curves(compared, "train_loss"), title="Training loss by epoch", y_format=".3f"
            ),
        ]
    return render(
        request,
        "runs.html",
        "runs",
        problems=problems(service),
        listed=listed,
        compared=compared,
        selected=selected,
        differing=differing,
        keys=keys,
        figures=figures,
        message=message,
        max_compared=MAX_COMPARED,
    )
