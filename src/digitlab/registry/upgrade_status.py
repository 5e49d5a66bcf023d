"""The upgrade's progress file: written by the trainer (often, atomically), read by
`digitlab run`'s progress bar, the Models page and GET /api/v1/upgrade.

A JSON object; `state` is one of ACTIVE while the trainer works, one of DONE after.
A trainer killed without a word (SIGKILL, a lost container) leaves an active state whose
`updated_at` stops moving: `is_stale` tells a reader so."""

from __future__ import annotations

import dataclasses
import json
import os
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ACTIVE = ("starting", "training", "evaluating")
# promoted: the robust model serves; kept: the policy refused it, the first one serves;
# failed / cancelled: the trainer stopped, the first one serves.
DONE = ("promoted", "kept", "failed", "cancelled")
# The trainer rewrites the file every HEARTBEAT_SECONDS even when nothing changed.
HEARTBEAT_SECONDS = 2.0
STALE_SECONDS = 60.0


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


@dataclass
class UpgradeStatus:
    state: str
    recipe: str
    serving: str | None  # the version serving while the upgrade runs
    candidate: str | None = None  # the trained version, once published
    epoch: int = 0  # the epoch being trained, 1-based; 0 before the first
    epochs: int = 0
    fraction: float = 0.0  # of all training steps, 0..1
    seconds_left: float | None = None  # training time left, estimated
    reason: str = ""  # what happened, in a sentence a user can act on
    pid: int = 0
    started_at: str = dataclasses.field(default_factory=now_iso)
    updated_at: str = dataclasses.field(default_factory=now_iso)

    @property
    def active(self) -> bool:
        return self.state in ACTIVE

    def is_stale(self, now: datetime | None = None) -> bool:
        """Active, yet not rewritten for STALE_SECONDS: the trainer is gone."""
        if not self.active:
            return False
        try:
            updated = datetime.fromisoformat(self.updated_at)
        except ValueError:
            return True
        return ((now or datetime.now(UTC)) - updated).total_seconds() > STALE_SECONDS

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def write_status(path: Path, status: UpgradeStatus) -> None:
    """Replace the file atomically: a reader sees the old or the new status, never half."""
    status.updated_at = now_iso()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".upgrade-", dir=path.parent)
    with os.fdopen(fd, "w") as f:
        json.dump(status.to_dict(), f, indent=2)
    Path(tmp).chmod(0o644)  # mkstemp's 0600 would hide it from an API in another container
    Path(tmp).replace(path)


def read_status(path: Path) -> UpgradeStatus | None:
    """The status, or None when there is none (or it cannot be read: the page then says
    nothing rather than failing)."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict):
        return None
    names = {f.name for f in dataclasses.fields(UpgradeStatus)}
    try:
        return UpgradeStatus(**{k: v for k, v in data.items() if k in names})
    except TypeError:
        return None


def describe(status: UpgradeStatus, now: datetime | None = None) -> str:
    """One line for the terminal and the page."""
    if status.is_stale(now):
        return (
            f"the upgrade to `{status.recipe}` stopped without a word (no progress since "
            f"{status.updated_at}); {status.serving} keeps serving"
        )
    if status.state == "starting":
        return f"upgrade to `{status.recipe}`: starting"
    if status.state == "training":
        left = (
            "" if status.seconds_left is None else f", about {duration(status.seconds_left)} left"
        )
        return f"training `{status.recipe}`: epoch {status.epoch}/{status.epochs}{left}"
    if status.state == "evaluating":
        return f"`{status.recipe}` trained ({status.candidate}); comparing it with {status.serving}"
    return status.reason


def duration(seconds: float) -> str:
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    return f"{seconds // 60} min {seconds % 60:02d} s"
