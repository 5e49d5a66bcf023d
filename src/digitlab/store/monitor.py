"""The monitor's reads: what a model version answered over a time window, aggregated in
SQL so that a million stored predictions cost one pass over an index, not a million
rows sent to Python.

- `window_counts`: per version, predictions by predicted label and confidence bin, and
  how many were answered as not a digit (kept apart: a letter or a doodle is not a
  digit the model drifted on);
- `trusted_counts`: per version, predictions whose latest correction came from a
  labeller, by the labeller's label and whether the model agreed;
- `waiting_for_review`: stored inputs without any labeller correction.

Confidence bins are counted with CASE over `CONFIDENCE_EDGES`, plain SQL that PostgreSQL and SQLite
both run. Migrations 0006 and 0007 add the indexes these queries use.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, case, exists, func, select, text
from sqlalchemy.orm import Session, aliased

from digitlab.store.models import Feedback, InputData, ModelRow, Prediction

# Bin k holds confidences in [EDGES[k-1], EDGES[k]); the first starts at 0 and the last
# ends at 1. Fine near 1 because a good model answers most digits above 0.99: evenly
# spaced bins would put nearly everything in one and see no shift.
CONFIDENCE_EDGES = (0.5, 0.7, 0.8, 0.9, 0.95, 0.98, 0.99, 0.995, 0.999)
BINS = len(CONFIDENCE_EDGES) + 1
LABELLER = "labeller"


def confidence_bin(value: float) -> int:
    """The bin of one confidence, as the SQL below computes it."""
    return sum(value >= edge for edge in CONFIDENCE_EDGES)


@dataclass
class WindowCounts:
    """One version's predictions in a window: counts[label][bin] of those answered as a
    digit (or stored before the verdict existed), and apart from them how many were
    answered as not a digit and how many had a verdict at all."""

    counts: list[list[int]] = field(default_factory=lambda: [[0] * BINS for _ in range(10)])
    refused: int = 0  # is_digit false
    judged: int = 0  # is_digit true or false; NULL (stored before the verdict) is not

    @property
    def digits(self) -> int:
        return sum(map(sum, self.counts))

    @property
    def requests(self) -> int:
        return self.digits + self.refused

    @property
    def refused_share(self) -> float | None:
        """Refused / judged; None without a prediction that has a verdict."""
        return self.refused / self.judged if self.judged else None

    @property
    def by_label(self) -> list[int]:
        return [sum(row) for row in self.counts]

    @property
    def by_bin(self) -> list[int]:
        return [sum(row[b] for row in self.counts) for b in range(BINS)]


@dataclass
class TrustedCounts:
    """One version's predictions with a trusted label: per true label, how many and how
    many the model got right."""

    labelled: list[int] = field(default_factory=lambda: [0] * 10)
    correct: list[int] = field(default_factory=lambda: [0] * 10)


def model_ids(session: Session, versions: list[str]) -> dict[str, int]:
    """version -> id in `models`, for the versions registered there."""
    rows = session.execute(
        select(ModelRow.version, ModelRow.id).where(ModelRow.version.in_(versions))
    )
    return {str(version): int(model_id) for version, model_id in rows.all()}


def window_counts(
    session: Session, *, model_ids: list[int], since: datetime
) -> dict[int, WindowCounts]:
    """model id -> its predictions made at or after `since`: by label and confidence bin
    those answered as a digit, and the count of those that were not."""
    # Grouped by (version, label, verdict) only, with one count per edge of the
    # predictions at or above it: PostgreSQL estimates 60 groups and aggregates in
    # parallel, where a CASE bin in the GROUP BY made it guess a group per row and
    # aggregate on one core.
    at_least = [func.sum(case((Prediction.confidence >= e, 1), else_=0)) for e in CONFIDENCE_EDGES]
    query = (
        select(Prediction.model_id, Prediction.label, Prediction.is_digit, func.count(), *at_least)
        .where(Prediction.model_id.in_(model_ids), Prediction.created_at >= since)
        .group_by(Prediction.model_id, Prediction.label, Prediction.is_digit)
    )
    found = {model_id: WindowCounts() for model_id in model_ids}
    for model_id, label, is_digit, n, *above in session.execute(query):
        seen = found[model_id]
        if is_digit is not None:
            seen.judged += int(n)
        if is_digit is False:
            seen.refused += int(n)
            continue
        cumulative = [int(n), *(int(c or 0) for c in above), 0]
        row = seen.counts[label]
        for k in range(BINS):
            row[k] += cumulative[k] - cumulative[k + 1]
    return found


def _latest_feedback_is_labellers() -> tuple[Any, ColumnElement[bool]]:
    """An alias of feedback and the condition that it is the latest correction of its
    prediction and a labeller's (a later anonymous one makes the label untrusted)."""
    later = aliased(Feedback)
    latest = aliased(Feedback)
    newer = exists().where(later.prediction_id == latest.prediction_id, later.id > latest.id)
    return latest, and_(latest.source == LABELLER, ~newer)


def trusted_counts(
    session: Session, *, model_ids: list[int], since: datetime
) -> dict[int, TrustedCounts]:
    """model id -> its predictions made at or after `since` whose latest correction is a
    labeller's, by that label, with how many the model predicted the same."""
    latest, trusted = _latest_feedback_is_labellers()
    right = case((latest.label == Prediction.label, 1), else_=0)
    query = (
        select(Prediction.model_id, latest.label, func.count(), func.sum(right))
        .join(latest, latest.prediction_id == Prediction.id)
        .where(Prediction.model_id.in_(model_ids), Prediction.created_at >= since, trusted)
        .group_by(Prediction.model_id, latest.label)
    )
    found = {model_id: TrustedCounts() for model_id in model_ids}
    for model_id, label, n, correct in session.execute(query):
        found[model_id].labelled[label] += n
        found[model_id].correct[label] += int(correct or 0)
    return found


def waiting_for_review(session: Session) -> int:
    """Stored inputs that no labeller has labelled yet (through any of their predictions):
    all inputs less those labelled, so that the million unlabelled ones are only counted
    (an index-only count) and the join runs over the labeller corrections alone."""
    labelled = (
        select(func.count(func.distinct(Prediction.input_id)))
        .join(Feedback, Feedback.prediction_id == Prediction.id)
        .where(Feedback.source == LABELLER)
        .scalar_subquery()
    )
    everything = select(func.count()).select_from(InputData).scalar_subquery()
    return int(session.scalar(select(everything - labelled)) or 0)


def prefer_index_probes(session: Session) -> None:
    """On PostgreSQL, for the rest of this transaction, plan for an in-cache database
    (random_page_cost 1.1, the usual SSD setting, instead of the spinning-disk default
    of 4): it then looks up the few labelled predictions by id instead of scanning
    all of them to hash-join ten thousand corrections."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SET LOCAL random_page_cost = 1.1"))


@dataclass(frozen=True)
class MonitorRead:
    counts: dict[int, WindowCounts]
    trusted: dict[int, TrustedCounts]
    waiting: int
    # Whole numbers read in the window (`readings`), and how many of them were corrected.
    readings: int = 0
    corrected_readings: int = 0


def read(session: Session, *, model_ids: list[int], since: datetime) -> MonitorRead:
    """Everything the monitor asks of the store for one window, in this order: the
    window counts planned with the default costs (a week of a busy service is most of
    the table, which a sequential scan reads faster than the index), then the labelled
    few planned for index probes."""
    counts = window_counts(session, model_ids=model_ids, since=since)
    prefer_index_probes(session)
    trusted = trusted_counts(session, model_ids=model_ids, since=since)
    from digitlab.store.readings import count_readings

    readings, corrected = count_readings(session, since=since)
    return MonitorRead(counts, trusted, waiting_for_review(session), readings, corrected)
