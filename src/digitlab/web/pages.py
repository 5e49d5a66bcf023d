"""Server-rendered pages (Jinja2) and the model figures they show. The Recognise page's
script talks to the JSON API; History and Models are rendered here from the store and
the model registry. A database or model that is not ready gives a banner, not an error.

History shows stored inputs, so it needs the viewer sign-in when `DIGITLAB_VIEWER_TOKEN`
is set. Models stays open: its cards and figures come from the registry and the test set,
and its live accuracy is an aggregate (a share and a count) that shows no one's input."""

from __future__ import annotations

import logging
from typing import Annotated
from urllib.parse import urlencode

import numpy as np
from fastapi import APIRouter, FastAPI, HTTPException, Query, Request
from fastapi.responses import FileResponse, HTMLResponse
from fastapi.staticfiles import StaticFiles

from digitlab.api.deps import ServiceDep
from digitlab.api.upgrade import upgrade_status
from digitlab.evaluation import plots
from digitlab.feedback.policy import HELDOUT
from digitlab.registry import versions as registry
from digitlab.store import db, lineage, queries, readings
from digitlab.web import login, review
from digitlab.web.login import ViewerPageDep
from digitlab.web.render import HERE, render

log = logging.getLogger("digitlab.web")
STATIC_DIR = HERE / "static"
router = APIRouter(include_in_schema=False)
PAGE_SIZE = 25
# Past this page the offset would not fit a 64-bit integer (SQLite answered 500); no store
# holds 2**31 predictions, so a page beyond it is clamped to it (an empty page).
MAX_PAGE = 2**31 // PAGE_SIZE


def problems(service: ServiceDep) -> dict[str, str]:
    return {what: why for what, why in service.readiness().items() if not why.startswith("ok")}


@router.get("/", response_class=HTMLResponse)
def recognise(request: Request, service: ServiceDep) -> HTMLResponse:
    return render(request, "recognise.html", "recognise", problems=problems(service))


@router.get("/history", response_class=HTMLResponse)
def history(
    request: Request,
    _viewer: ViewerPageDep,
    service: ServiceDep,
    page: Annotated[int, Query(ge=1)] = 1,
    label: Annotated[str, Query(pattern=r"^\d?$")] = "",
    model: str = "",
    wrong: bool = False,
) -> HTMLResponse:
    label_no = int(label) if label else None
    page = min(page, MAX_PAGE)
    rows: list[queries.PredictionRecord] = []
    numbers: list[readings.ReadingRecord] = []
    trained: dict[int, list[str]] = {}  # prediction id -> versions trained with its feedback
    try:
        with db.transaction(service.engine) as session:
            # One row more than a page tells whether an older page exists.
            rows = queries.recent_predictions(
                session,
                limit=PAGE_SIZE + 1,
                offset=(page - 1) * PAGE_SIZE,
                label=label_no,
                model=model or None,
                wrong=wrong,
            )
            trained = lineage.training_versions_by_prediction(session, [r.id for r in rows])
            # The newest whole numbers read (POST /api/v1/read), on the first page only.
            numbers = readings.list_readings(session, limit=10) if page == 1 else []
    except db.StoreError:
        pass  # the banner from `problems` says why
    versions = [v.version for v in registry.list_versions(service.settings.model_dir)]

    def link(number: int) -> str:
        query = {"label": label, "model": model, "wrong": "1" if wrong else "", "page": number}
        return "/history?" + urlencode({k: v for k, v in query.items() if v})

    return render(
        request,
        "history.html",
        "history",
        problems=problems(service),
        rows=rows[:PAGE_SIZE],
        trained=trained,
        numbers=numbers,
        more=len(rows) > PAGE_SIZE,
        page_no=page,
        link=link,
        versions=versions,
        label=label_no,
        model=model,
        wrong=wrong,
    )


def live_accuracy(service: ServiceDep) -> dict[str, queries.ModelStats]:
    try:
        with db.transaction(service.engine) as session:
            stats = queries.stats_by_model(session, trusted_only=True)
            return {s.version: s for s in stats}
    except db.StoreError:
        return {}


def heldout_accuracy(service: ServiceDep) -> dict[str, str]:
    """version -> its latest accuracy on held-out corrections (`digitlab retrain`)."""
    try:
        with db.transaction(service.engine) as session:
            found = lineage.latest_evaluations(session)
    except db.StoreError:
        return {}
    return {
        version: f"{accuracy:.2%} over {images} held-out correction" + ("s" if images > 1 else "")
        for version, by_name in found.items()
        if HELDOUT in by_name
        for accuracy, images in [by_name[HELDOUT]]
    }


@router.get("/models", response_class=HTMLResponse)
def models_page(request: Request, service: ServiceDep) -> HTMLResponse:
    model_dir = service.settings.model_dir
    current = registry.current_version(model_dir)
    live = live_accuracy(service)
    heldout = heldout_accuracy(service)
    cards = []
    for v in reversed(registry.list_versions(model_dir)):
        m = v.card.get("metrics", {})
        stats = live.get(v.version)
        cards.append(
            {
                "version": v.version,
                "serving": v.version == current,
                "dataset": v.card["dataset"]["name"],
                "recipe": v.card.get("recipe", "?"),
                "seed": v.card.get("seed", "?"),
                "epochs": v.card.get("config", {}).get("epochs", "?"),
                "test_accuracy": f"{m['test_accuracy']:.2%}" if "test_accuracy" in m else "n/a",
                "live": f"{stats.accuracy:.2%} over {stats.count} labelled input"
                + ("s" if stats.count > 1 else "")
                if stats and stats.count
                else "no labelled inputs or feedback yet",
                "heldout": heldout.get(v.version, "not measured (digitlab retrain measures it)"),
                "parent": (v.card.get("lineage") or {}).get("parent"),
                "corrections": ((v.card.get("lineage") or {}).get("extra") or {}).get("images"),
                "train_seconds": f"{m.get('train_seconds', 0):.1f} s on {m.get('device', '?')}",
                "created_at": v.card.get("created_at", "?"),
            }
        )
    # The background upgrade (digitlab upgrade): what trains, how far, or how it ended.
    upgrade = upgrade_status(service)
    return render(
        request,
        "models.html",
        "models",
        problems=problems(service),
        cards=cards,
        upgrade=upgrade if upgrade.state != "none" else None,
    )


def model_or_404(service: ServiceDep, version: str) -> registry.ModelVersion:
    try:
        return registry.load_version(service.settings.model_dir, version)
    except registry.RegistryError as exc:
        log.info("model page for %r: %s", version, exc)  # the path stays in the log
        raise HTTPException(404, exc.public) from None


@router.get("/models/{version}/curves.png")
def curves(service: ServiceDep, version: str) -> FileResponse:
    model = model_or_404(service, version)
    path = service.settings.report_dir / version / "curves.png"
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        plots.curves_png(model.card.get("history", []), path, title=version)
    return FileResponse(path, media_type="image/png")


@router.get("/models/{version}/confusion.png")
def confusion(service: ServiceDep, version: str) -> FileResponse:
    """The test-set confusion matrix: from the model card, or evaluated on first request
    for older cards without one."""
    from digitlab.data import DataError, load_split
    from digitlab.evaluation.report import evaluate, write_report

    model = model_or_404(service, version)
    out = service.settings.report_dir / version
    card_matrix = model.card.get("metrics", {}).get("test_confusion")
    if not (out / "confusion.png").is_file() and card_matrix:
        # Written by the trainer: no test set needed here (the api container has none).
        out.mkdir(parents=True, exist_ok=True)
        plots.confusion_png(np.array(card_matrix), out / "confusion.png", title=version)
    elif not (out / "confusion.png").is_file():
        try:
            test = load_split(
                model.card["dataset"]["name"], "test", service.settings, download=False
            )
        except DataError as exc:
            log.info("confusion matrix of %s: %s", version, exc)  # names the data folder
            raise HTTPException(
                404, "no confusion matrix yet: the test set is not available to this service"
            ) from None
        write_report(model, evaluate(model, test), test, out)
    return FileResponse(out / "confusion.png", media_type="image/png")


def install(app: FastAPI) -> None:
    """Add the pages, the sign-in page and their static files to the API's app."""
    app.include_router(router)
    review.install(app)
    login.install(app)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
