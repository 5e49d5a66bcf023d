"""Lineage of recorded runs, for the Runs page: how many corrections each model version
was trained with (`training_feedback`), counted in SQL."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from digitlab.store.models import ModelRow, TrainingFeedback


def corrections_by_version(session: Session, versions: Iterable[str]) -> dict[str, int]:
    """version -> the corrections it was trained with; versions trained with none are
    left out."""
    wanted = sorted(set(versions))
    if not wanted:
        return {}
    rows = session.execute(
        select(ModelRow.version, func.count())
        .join(TrainingFeedback, TrainingFeedback.model_id == ModelRow.id)
        .where(ModelRow.version.in_(wanted))
        .group_by(ModelRow.version)
    )
    return {version: int(n) for version, n in rows}
