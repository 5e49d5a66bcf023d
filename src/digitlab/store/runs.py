"""Writes and reads of the experiment tables: runs, their per-epoch metrics, and the
promotions of model versions. Keyword-only functions taking a session; the caller's
`db.transaction(engine)` block is the unit of work.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from digitlab.store.models import RUN_STATUSES, ModelRow, Promotion, RunMetric, RunRow

EPOCH_FIELDS = (
    "lr",
    "train_loss",
    "train_acc",
    "val_loss",
    "val_acc",
    "seconds",
    "images_per_s",
)


def create_run(
    session: Session,
    *,
    recipe: str,
    dataset: str,
    seed: int,
    config: dict[str, Any],
    libraries: dict[str, str],
    git_commit: str | None = None,
    sweep: str | None = None,
) -> int:
    """Insert a run as `running`; returns its id."""
    row = RunRow(
        status="running",
        recipe=recipe,
        dataset=dataset,
        seed=seed,
        config=config,
        libraries=libraries,
        git_commit=git_commit,
        sweep=sweep,
    )
    session.add(row)
    session.flush()
    return row.id


def add_epoch(session: Session, *, run_id: int, row: dict[str, Any]) -> None:
    """One history row of `fit` (member, epoch, lr, losses, accuracies, seconds...)."""
    values = {key: _float(row.get(key)) for key in EPOCH_FIELDS}
    session.add(
        RunMetric(run_id=run_id, member=int(row["member"]), epoch=int(row["epoch"]), **values)
    )
    session.flush()


def finish_run(
    session: Session,
    *,
    run_id: int,
    status: str,
    metrics: dict[str, Any] | None = None,
    model_id: int | None = None,
    error: str | None = None,
) -> None:
    """Close a running run; a run already finished is left as it is (so marking a run
    failed after a late error cannot overwrite a recorded success)."""
    if status not in RUN_STATUSES or status == "running":
        raise ValueError(f"a run finishes as succeeded, failed or interrupted, not {status!r}")
    session.execute(
        update(RunRow)
        .where(RunRow.id == run_id, RunRow.status == "running")
        .values(
            status=status,
            metrics=metrics,
            model_id=model_id,
            error=error,
            finished_at=func.now(),
        )
    )


def record_promotion(session: Session, *, model_id: int, promoted_by: str) -> int:
    row = Promotion(model_id=model_id, promoted_by=promoted_by[:100])
    session.add(row)
    session.flush()
    return row.id


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


@dataclass(frozen=True)
class EpochRecord:
    member: int
    epoch: int
    lr: float
    train_loss: float
    train_acc: float
    val_loss: float | None
    val_acc: float | None
    seconds: float
    images_per_s: float | None


@dataclass(frozen=True)
class RunRecord:
    id: int
    status: str
    recipe: str
    dataset: str
    seed: int
    config: dict[str, Any]
    sweep: str | None
    git_commit: str | None
    libraries: dict[str, str]
    metrics: dict[str, Any]
    error: str | None
    model_version: str | None
    started_at: datetime
    finished_at: datetime | None
    epochs: list[EpochRecord] = field(default_factory=list)

    @property
    def seconds(self) -> float | None:
        if self.finished_at is None:
            return None
        return (self.finished_at - self.started_at).total_seconds()

    @property
    def val_acc(self) -> float | None:
        """The final validation accuracy (of the whole model, ensembles included)."""
        value = self.metrics.get("val_accuracy")
        if value is None and self.epochs:
            value = self.epochs[-1].val_acc
        return None if value is None else float(value)


def list_runs(
    session: Session,
    *,
    limit: int = 20,
    status: str | None = None,
    sweep: str | None = None,
) -> list[RunRecord]:
    """Newest first, without their epochs."""
    query = (
        select(RunRow, ModelRow.version)
        .outerjoin(ModelRow, RunRow.model_id == ModelRow.id)
        .order_by(RunRow.id.desc())
        .limit(limit)
    )
    if status is not None:
        query = query.where(RunRow.status == status)
    if sweep is not None:
        query = query.where(RunRow.sweep == sweep)
    return [_record(run, version) for run, version in session.execute(query).all()]


def get_runs(session: Session, *, ids: list[int]) -> list[RunRecord]:
    """The runs with these ids in the order given, with their epochs; a missing id
    raises ValueError naming it."""
    query = (
        select(RunRow, ModelRow.version)
        .outerjoin(ModelRow, RunRow.model_id == ModelRow.id)
        .where(RunRow.id.in_(ids))
    )
    found = {run.id: (run, version) for run, version in session.execute(query).all()}
    missing = [i for i in ids if i not in found]
    if missing:
        raise ValueError(f"no run with id {', '.join(map(str, missing))}")
    epochs: dict[int, list[EpochRecord]] = {i: [] for i in ids}
    metric_rows = session.scalars(
        select(RunMetric)
        .where(RunMetric.run_id.in_(ids))
        .order_by(RunMetric.run_id, RunMetric.member, RunMetric.epoch)
    )
    for m in metric_rows:
        epochs[m.run_id].append(
            EpochRecord(**{k: getattr(m, k) for k in ("member", "epoch", *EPOCH_FIELDS)})
        )
    return [_record(*found[i], epochs[i]) for i in ids]


def _record(run: RunRow, version: str | None, epochs: list[EpochRecord] | None = None) -> RunRecord:
    return RunRecord(
        id=run.id,
        status=run.status,
        recipe=run.recipe,
        dataset=run.dataset,
        seed=run.seed,
        config=run.config,
        sweep=run.sweep,
        git_commit=run.git_commit,
        libraries=run.libraries,
        metrics=run.metrics or {},
        error=run.error,
        model_version=version,
        started_at=run.started_at,
        finished_at=run.finished_at,
        epochs=epochs or [],
    )


@dataclass(frozen=True)
class PromotionRecord:
    version: str
    promoted_by: str
    promoted_at: datetime


def promotions(session: Session, *, limit: int = 20) -> list[PromotionRecord]:
    """Newest first: the first is the version promoted last."""
    query = (
        select(ModelRow.version, Promotion.promoted_by, Promotion.promoted_at)
        .join(ModelRow, Promotion.model_id == ModelRow.id)
        .order_by(Promotion.id.desc())
        .limit(limit)
    )
    return [PromotionRecord(*row) for row in session.execute(query).all()]
