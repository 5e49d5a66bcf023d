"""Model versions: list them, see the serving one, switch it without a restart."""

from __future__ import annotations

import logging

from fastapi import APIRouter, HTTPException
from starlette.concurrency import run_in_threadpool

from digitlab.api.auth import AdminDep
from digitlab.api.deps import API_PREFIX, ServiceDep
from digitlab.api.params import Version
from digitlab.api.responses import ADMIN, responses
from digitlab.api.schemas import ModelOut
from digitlab.registry import versions as registry
from digitlab.registry.lifecycle import activate_model

log = logging.getLogger("digitlab.api")
# The prefix on the router itself: metrics label requests by the full route path.
router = APIRouter(prefix=API_PREFIX, tags=["models"])


def _out(model: registry.ModelVersion, current: str | None, serving: str | None) -> ModelOut:
    card = model.card
    return ModelOut(
        version=model.version,
        dataset=str(card.get("dataset", {}).get("name", "?")),
        recipe=card.get("recipe"),
        created_at=card.get("created_at"),
        metrics=card.get("metrics", {}),
        current=model.version == current,
        serving=model.version == serving,
    )


@router.get("/models", response_model=list[ModelOut], responses=responses(500, 503))
def list_models(service: ServiceDep) -> list[ModelOut]:
    """Every model version in the registry, oldest first."""
    model_dir = service.settings.model_dir
    current = registry.current_version(model_dir)
    serving = service.predictor.model.version if current else None
    return [_out(m, current, serving) for m in registry.list_versions(model_dir)]


@router.get("/models/current", response_model=ModelOut, responses=responses(500, 503))
def current_model(service: ServiceDep) -> ModelOut:
    """The model version this service answers with."""
    model = service.predictor.model  # RegistryError (503) when there is none
    return _out(model, registry.current_version(service.settings.model_dir), model.version)


@router.post(
    "/models/{version}/activate", response_model=ModelOut, responses=ADMIN | responses(404)
)
async def activate(version: Version, service: ServiceDep, _admin: AdminDep) -> ModelOut:
    """Make VERSION the serving model, without a restart (needs the admin token)."""
    # Recorded in the promotions history as made through the API.
    try:
        await run_in_threadpool(lambda: activate_model(service.settings, version, by="api"))
    except registry.RegistryError as exc:  # unknown here and in the database, or damaged
        # The message names the model folder: the log keeps it, the answer does not.
        log.warning("activating %s: %s", version, exc)
        known = ", ".join(m.version for m in registry.list_versions(service.settings.model_dir))
        raise HTTPException(
            404, f"no model version {version!r} can be activated (known here: {known or 'none'})"
        ) from None
    model = await run_in_threadpool(lambda: service.predictor.model)  # load it now
    return _out(model, version, model.version)
