"""The background upgrade's progress (digitlab upgrade): what serves, what trains, its
epoch and time left, or how it ended. The Models page polls it."""

from __future__ import annotations

from typing import Literal, cast

from fastapi import APIRouter
from pydantic import BaseModel, Field

from digitlab.api.deps import API_PREFIX, ServiceDep
from digitlab.api.responses import responses
from digitlab.registry.upgrade_status import describe, read_status

router = APIRouter(prefix=API_PREFIX, tags=["models"])

State = Literal[
    "none",
    "starting",
    "training",
    "evaluating",
    "promoted",
    "kept",
    "failed",
    "cancelled",
    "stopped",
]


class UpgradeOut(BaseModel):
    state: State = Field(
        description="none: no upgrade has run here; starting, training, evaluating: at work; "
        "promoted: the trained model serves; kept: the policy refused it; failed, cancelled, "
        "stopped (the trainer went silent): the first model keeps serving."
    )
    message: str = Field(description="What is happening or what happened, in a sentence.")
    recipe: str | None = None
    serving: str | None = Field(default=None, description="The version serving meanwhile.")
    candidate: str | None = Field(default=None, description="The trained version, once saved.")
    epoch: int = Field(default=0, description="The epoch in training, 1-based (0: none yet).")
    epochs: int = 0
    fraction: float = Field(default=0.0, description="Share of the training done, 0 to 1.")
    seconds_left: float | None = Field(default=None, description="Training time left, estimated.")
    updated_at: str | None = None


@router.get("/upgrade", response_model=UpgradeOut, responses=responses(500))
def upgrade_status(service: ServiceDep) -> UpgradeOut:
    """The background upgrade to the robust model: its progress, or how it ended."""
    status = read_status(service.settings.upgrade_status_file)
    if status is None:
        return UpgradeOut(state="none", message="no upgrade has run here")
    known = ("starting", "training", "evaluating", "promoted", "kept", "failed", "cancelled")
    stopped = status.is_stale() or status.state not in known
    state = "stopped" if stopped else cast(State, status.state)
    return UpgradeOut(
        state=state,
        message=describe(status),
        recipe=status.recipe,
        serving=status.serving,
        candidate=status.candidate,
        epoch=status.epoch,
        epochs=status.epochs,
        fraction=status.fraction,
        seconds_left=status.seconds_left,
        updated_at=status.updated_at,
    )
