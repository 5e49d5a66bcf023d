"""Reads a user needs: recent predictions and accuracy per model version.

The true label of an input is the latest feedback on its prediction when there is one,
else the label it came with (a dataset's label), else unknown.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session, aliased

from digitlab.store.models import Feedback, InputData, ModelRow, Prediction


@dataclass(frozen=True)
class PredictionRecord:
    id: int
    input_id: int
    model_version: str
    label: int
    confidence: float
    true_label: int | None
    source: str
    created_at: datetime
    probabilities: list[float]
    latency_ms: float
    is_digit: bool | None = None  # the model's not-a-digit verdict; None: stored before it


@dataclass
class ModelStats:
    version: str
    confusion: list[list[int]] = field(default_factory=lambda: [[0] * 10 for _ in range(10)])

    @property
    def count(self) -> int:
        return sum(map(sum, self.confusion))

    @property
    def correct(self) -> int:
        return sum(self.confusion[d][d] for d in range(10))

    @property
    def accuracy(self) -> float:
        return self.correct / self.count if self.count else 0.0


def _with_truth(*, trusted_only: bool = False) -> tuple[Any, ColumnElement[int]]:
    """A select of (prediction, input, model version) with the latest feedback joined
    (the latest labeller's with `trusted_only`), and the true-label expression (typed
    Any: Select's generics differ in 2.0 and 2.1)."""
    feedback = select(Feedback.prediction_id, func.max(Feedback.id).label("feedback_id"))
    if trusted_only:
        feedback = feedback.where(Feedback.source == "labeller")
    latest = feedback.group_by(Feedback.prediction_id).subquery()
    last_feedback = aliased(Feedback)
    truth = func.coalesce(last_feedback.label, InputData.label)
    query = (
        select(Prediction, InputData, ModelRow.version)
        .join(InputData, Prediction.input_id == InputData.id)
        .join(ModelRow, Prediction.model_id == ModelRow.id)
        .outerjoin(latest, latest.c.prediction_id == Prediction.id)
        .outerjoin(last_feedback, last_feedback.id == latest.c.feedback_id)
    )
    return query, truth


def recent_predictions(
    session: Session,
    *,
    limit: int = 20,
    model: str | None = None,
    label: int | None = None,
    wrong: bool = False,
    offset: int = 0,
    since: datetime | None = None,
    until: datetime | None = None,
    prediction_id: int | None = None,
) -> list[PredictionRecord]:
    """Newest first; `label` filters on the predicted label, `wrong` keeps the
    predictions whose known true label differs, `since` (inclusive) and `until`
    (exclusive) bound the time they were made."""
    query, truth = _with_truth()
    query = query.add_columns(truth)
    if prediction_id is not None:
        query = query.where(Prediction.id == prediction_id)
    if since is not None:
        query = query.where(Prediction.created_at >= since)
    if until is not None:
        query = query.where(Prediction.created_at < until)
    if model is not None:
        query = query.where(ModelRow.version == model)
    if label is not None:
        query = query.where(Prediction.label == label)
    if wrong:
        query = query.where(truth.is_not(None), truth != Prediction.label)
    rows = session.execute(query.order_by(Prediction.id.desc()).offset(offset).limit(limit)).all()
    return [
        PredictionRecord(
            id=p.id,
            input_id=i.id,
            model_version=version,
            label=p.label,
            confidence=p.confidence,
            true_label=true_label,
            source=i.source,
            created_at=p.created_at,
            probabilities=[float(x) for x in p.probabilities],
            latency_ms=p.latency_ms,
            is_digit=p.is_digit,
        )
        for p, i, version, true_label in rows
    ]


def get_prediction(session: Session, *, prediction_id: int) -> PredictionRecord | None:
    found = recent_predictions(session, limit=1, prediction_id=prediction_id)
    return found[0] if found else None


def stats_by_model(session: Session, *, trusted_only: bool = False) -> list[ModelStats]:
    """Confusion counts (true x predicted) per model version, over the inputs whose
    true label is known; versions in the order they were registered. `trusted_only`:
    only labellers' corrections count (and the labels inputs were stored with), as on
    the public Models page, where anyone's feedback must not move the figure."""
    query, truth = _with_truth(trusted_only=trusted_only)
    counts = (
        query.with_only_columns(
            ModelRow.id, ModelRow.version, truth, Prediction.label, func.count()
        )
        .where(truth.is_not(None))
        .group_by(ModelRow.id, ModelRow.version, truth, Prediction.label)
        .order_by(ModelRow.id)
    )
    found: dict[str, ModelStats] = {}
    for _, version, true_label, predicted, n in session.execute(counts):
        stats = found.setdefault(version, ModelStats(version))
        stats.confusion[true_label][predicted] += n
    return list(found.values())
