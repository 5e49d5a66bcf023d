"""Training lineage: the corrections a model version was trained with
(`training_feedback`) and the accuracies measured of each version (`model_evaluations`).
Keyword-only writes taking a session, like crud.py; the caller's transaction commits."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from digitlab.store.models import Feedback, ModelEvaluation, ModelRow, TrainingFeedback


def record_training_feedback(
    session: Session, *, model_id: int, feedback_ids: Iterable[int]
) -> None:
    """Record that version `model_id` was trained with these corrections; pairs already
    recorded are left as they are (safe to call again)."""
    rows = [{"model_id": model_id, "feedback_id": f} for f in sorted(set(feedback_ids))]
    if not rows:
        return
    dialect = session.get_bind().dialect.name
    insert_fn = postgresql.insert if dialect == "postgresql" else sqlite.insert
    session.execute(insert_fn(TrainingFeedback).values(rows).on_conflict_do_nothing())


def record_evaluation(
    session: Session,
    *,
    model_id: int,
    name: str,
    images: int,
    accuracy: float,
    details: dict[str, Any] | None = None,
) -> int:
    """Store an accuracy of version `model_id` on the set `name`; returns its id."""
    if not 0.0 <= accuracy <= 1.0:
        raise ValueError(f"accuracy {accuracy} is not a share between 0 and 1")
    row = ModelEvaluation(
        model_id=model_id, name=name, images=images, accuracy=accuracy, details=details
    )
    session.add(row)
    session.flush()
    return row.id


def latest_evaluations(session: Session) -> dict[str, dict[str, tuple[float, int]]]:
    """version -> set name -> (accuracy, images), from the newest evaluation of each."""
    newest = (
        select(func.max(ModelEvaluation.id).label("id"))
        .group_by(ModelEvaluation.model_id, ModelEvaluation.name)
        .subquery()
    )
    rows = session.execute(
        select(
            ModelRow.version, ModelEvaluation.name, ModelEvaluation.accuracy, ModelEvaluation.images
        )
        .join(newest, newest.c.id == ModelEvaluation.id)
        .join(ModelRow, ModelRow.id == ModelEvaluation.model_id)
        .order_by(ModelRow.id, ModelEvaluation.name)
    )
    found: dict[str, dict[str, tuple[float, int]]] = {}
    for version, name, accuracy, images in rows:
        found.setdefault(version, {})[name] = (accuracy, images)
    return found


def training_versions_by_feedback(
    session: Session, feedback_ids: Iterable[int]
) -> dict[int, list[str]]:
    """feedback id -> the versions trained with it, oldest first; ids never used in
    training are left out."""
    ids = sorted(set(feedback_ids))
    if not ids:
        return {}
    rows = session.execute(
        select(TrainingFeedback.feedback_id, ModelRow.version)
        .join(ModelRow, ModelRow.id == TrainingFeedback.model_id)
        .where(TrainingFeedback.feedback_id.in_(ids))
        .order_by(TrainingFeedback.feedback_id, ModelRow.id)
    )
    found: dict[int, list[str]] = {}
    for feedback_id, version in rows:
        found.setdefault(feedback_id, []).append(version)
    return found


def training_versions_by_prediction(
    session: Session, prediction_ids: Iterable[int]
) -> dict[int, list[str]]:
    """prediction id -> the versions trained with any correction of it, oldest first;
    what History shows as "trained into"."""
    ids = sorted(set(prediction_ids))
    if not ids:
        return {}
    # .all(): dict() would take a Result, which has keys(), for a mapping.
    owners: dict[int, int] = dict(
        session.execute(
            select(Feedback.id, Feedback.prediction_id).where(Feedback.prediction_id.in_(ids))
        ).all()
    )
    found: dict[int, list[str]] = {}
    for feedback_id, versions in training_versions_by_feedback(session, owners).items():
        merged = found.setdefault(owners[feedback_id], [])
        merged.extend(v for v in versions if v not in merged)
    return found
