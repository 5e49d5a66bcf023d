"""The FastAPI application: `create_app(settings)`; `digitlab serve` runs it with uvicorn.

digitlab serve --host 127.0.0.1 --port 8000     # then open http://127.0.0.1:8000/docs
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from digitlab.api import (
    auth,
    errors,
    health,
    labeller,
    models,
    monitor,
    openapi,
    predict,
    predict_limit,
    predictions,
    read,
    reference,
    review,
    runs,
    security,
)
from digitlab.api import upgrade as upgrade_api
from digitlab.api.body_limit import BodyLimitMiddleware
from digitlab.api.metrics import MetricsMiddleware
from digitlab.api.service import Service, prepare_engine
from digitlab.config import Settings
from digitlab.inference.predictor import Predictor
from digitlab.registry import versions as registry
from digitlab.registry.database import Watcher
from digitlab.store.artifacts import in_database
from digitlab.web import docs as api_docs
from digitlab.web import monitor as monitor_page
from digitlab.web import pages as web
from digitlab.web import runs as runs_page
from digitlab.web import upload as upload_page

log = logging.getLogger("digitlab.api")


def create_app(settings: Settings, *, service: Service | None = None) -> FastAPI:
    """The service over `settings`' database and model folder. The database may be down
    (the service starts not ready); a schema that is behind raises StoreError."""
    if service is None:
        predictor = Predictor(settings.model_dir, threshold=settings.verdict_threshold)
        service = Service(settings, prepare_engine(settings), predictor)
    watcher = model_watcher(service)
    if watcher is not None:
        watcher.sync_now()  # the active version before the first request, if reachable
    try:
        service.metrics.serving(service.predictor.model.version)
    except registry.RegistryError as exc:
        log.warning("%s; /readyz reports it until a model is activated", exc)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if watcher is not None:
            watcher.start()
        yield
        if watcher is not None:
            watcher.stop()
        await service.close()

    app = FastAPI(
        title="digitlab",
        summary="Handwritten-digit recognition: predictions, stored with their inputs.",
        version="1",
        lifespan=lifespan,
        # operationId = the handler's name (`predict`, `list_predictions`): what a client
        # generated from the schema calls its functions.
        generate_unique_id_function=lambda route: route.name,
        # Served from this service's own files by web/docs.py, not FastAPI's CDN pages.
        docs_url=None,
        redoc_url=None,
    )
    app.state.service = service
    errors.install(app)
    openapi.install(app)
    labeller.install(app, settings)  # the limit on anonymous corrections
    predict_limit.install(app, settings)  # and on anonymous predictions
    auth.install(app, settings)  # the limit on wrong tokens
    routers = (predict.router, read.router, predictions.router, models.router, review.router)
    for router in (*routers, monitor.router, runs.router):
        app.include_router(router)
    app.include_router(health.router)
    app.include_router(upgrade_api.router)  # the background upgrade's progress
    web.install(app)  # the pages: /, /history, /models and /static
    api_docs.install(app)  # /docs and /redoc, from static/docs
    app.include_router(monitor_page.router)
    app.include_router(runs_page.router)
    monitor.install_gauge(service)  # digitlab_drift_psi on /metrics
    # The reference project's routes (/health, /predict, /upload), as it answers them.
    app.include_router(reference.router)
    app.include_router(upload_page.router)
    # The last one added runs first: metrics see the 413s the body limit answers.
    app.add_middleware(
        BodyLimitMiddleware,
        max_body=settings.max_upload_bytes,
        drain_bytes=settings.oversize_drain_bytes,
        drain_seconds=settings.oversize_drain_seconds,
        body_seconds=settings.body_read_seconds,
    )
    app.add_middleware(MetricsMiddleware, metrics=service.metrics)
    security.install(app)  # outermost: every answer gets the security headers
    return app


def model_watcher(service: Service) -> Watcher | None:
    """With the registry in PostgreSQL: a watcher that keeps the model folder (a cache)
    on the active version and loads each new one before requests need it."""
    if not in_database(service.engine):
        return None

    def loaded(version: str) -> None:
        service.metrics.serving(service.predictor.model.version)  # loads it now

    return Watcher(service.engine, service.settings.model_dir, loaded)


def app_from_environment() -> FastAPI:
    """For `uvicorn --factory digitlab.app:app_from_environment` (settings from the
    environment), e.g. to run several worker processes."""
    from digitlab.config import get_settings

    return create_app(get_settings())
