"""Recorded training runs (behind the viewer token): `GET /api/v1/runs` lists them with
their lineage; `GET /api/v1/runs?id=1&id=2` puts the runs named side by side with their
per-epoch curves and the config keys on which they differ."""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from digitlab.api.auth import ViewerDep
from digitlab.api.deps import API_PREFIX, SessionDep
from digitlab.api.responses import GUARDED, responses
from digitlab.store import run_lineage, runs

# The states a run can be in (store.models.RUN_STATUSES; a test keeps the two in step).
RunStatus = Literal["running", "succeeded", "failed", "interrupted"]

router = APIRouter(prefix=API_PREFIX, tags=["runs"])
MAX_COMPARED = 8
# The viewer-guarded reads' errors, and 404 for an id that names no run.
ERRORS = GUARDED | responses(404)
# runs.id is a 32-bit INTEGER on both stores: a larger id cannot exist, and would not bind.
MAX_RUN_ID = 2**31 - 1
RunId = Annotated[int, Field(ge=1, le=MAX_RUN_ID)]


class RunOut(BaseModel):
    id: int
    status: str
    recipe: str
    dataset: str
    seed: int
    sweep: str | None
    started_at: datetime
    finished_at: datetime | None
    seconds: float | None = Field(description="Wall time; null while running")
    val_accuracy: float | None
    test_accuracy: float | None
    model_version: str | None = Field(description="The version it produced, if it succeeded")
    parent: str | None = Field(description="The version it fine-tuned, if any")
    corrections: int = Field(description="Corrections the produced version was trained with")
    error: str | None


class EpochOut(BaseModel):
    member: int
    epoch: int
    lr: float
    train_loss: float
    train_acc: float
    val_loss: float | None
    val_acc: float | None
    seconds: float


class RunDetail(RunOut):
    config: dict[str, Any]
    epochs: list[EpochOut] = Field(description="Per epoch and member; only for runs asked by id")


class RunsOut(BaseModel):
    runs: list[RunDetail]
    differing: list[str] = Field(description="Config keys whose values differ between the runs")


def run_rows(
    session: Session, records: list[runs.RunRecord], *, epochs: bool = True
) -> list[dict[str, Any]]:
    corrections = run_lineage.corrections_by_version(
        session, [r.model_version for r in records if r.model_version]
    )
    out = []
    for r in records:
        test = r.metrics.get("test_accuracy")
        out.append(
            {
                "id": r.id,
                "status": r.status,
                "recipe": r.recipe,
                "dataset": r.dataset,
                "seed": r.seed,
                "sweep": r.sweep,
                "started_at": r.started_at,
                "finished_at": r.finished_at,
                "seconds": r.seconds,
                "val_accuracy": r.val_acc,
                "test_accuracy": None if test is None else float(test),
                "model_version": r.model_version,
                "parent": r.config.get("parent"),
                "corrections": corrections.get(r.model_version or "", 0),
                "error": r.error,
                "config": r.config,
                "epochs": [dataclasses.asdict(e) for e in r.epochs] if epochs else [],
            }
        )
    return out


def differing_keys(configs: list[dict[str, Any]]) -> list[str]:
    """The keys, sorted, whose values are not the same in every config (a key missing
    from one counts as differing)."""
    keys = sorted({k for c in configs for k in c})
    missing = object()
    return [k for k in keys if len({repr(c.get(k, missing)) for c in configs}) > 1]


@router.get("/runs", response_model=RunsOut, responses=ERRORS)
def list_runs(
    _viewer: ViewerDep,  # first: checked before a transaction is opened
    session: SessionDep,
    run_id: Annotated[
        list[RunId] | None,
        Query(
            alias="id",
            max_length=MAX_COMPARED,
            description=f"Compare these runs (up to {MAX_COMPARED}): their epochs are included"
            " and the config keys that differ listed",
        ),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=500, description="How many, newest first")] = 50,
    status: Annotated[RunStatus | None, Query(description="Only runs in this state")] = None,
) -> dict[str, Any]:
    """Recorded training runs, newest first, with recipe, dataset, status, duration,
    accuracy, config and lineage (parent version, corrections used); or, with `id`, the
    runs named, side by side with their per-epoch curves."""
    if not run_id:
        records = runs.list_runs(session, limit=limit, status=status)
        return {"runs": run_rows(session, records, epochs=False), "differing": []}
    ids = list(dict.fromkeys(run_id))  # the order given, each once
    if len(ids) > MAX_COMPARED:
        raise HTTPException(422, f"compare at most {MAX_COMPARED} runs at a time")
    try:
        records = runs.get_runs(session, ids=ids)
    except ValueError as exc:  # names the missing id
        raise HTTPException(404, str(exc)) from None
    return {
        "runs": run_rows(session, records),
        "differing": differing_keys([r.config for r in records]),
    }
