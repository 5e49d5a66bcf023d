"""Trusted labels: who gave a correction, the checks before one is stored, a labeller's
verdict on an anonymous one, undo, and the review queue.

An input has a trusted label when it came with one (`input_data.label`, set by whoever
stored it: a dataset's label in bulk scoring) or when a labeller corrected any of its
predictions. Once an input has a labeller's label, no further correction is taken for it
(from anyone) until that one is undone: a stranger cannot overwrite it, and two
labellers cannot silently disagree.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, and_, case, delete, exists, func, literal_column, select
from sqlalchemy.orm import Session, aliased

from digitlab.store.models import Feedback, InputData, ModelRow, Prediction, TrainingFeedback

LABELLER, ANONYMOUS = "labeller", "anonymous"


class NotFoundError(LookupError):
    """No such prediction or feedback."""


class ConflictError(ValueError):
    """The correction clashes with what is stored (an input a labeller already labelled)."""


def labeller_feedback_of(session: Session, input_id: int) -> int | None:
    """The id of a labeller's correction on any prediction of this input, if any."""
    return session.scalar(
        select(Feedback.id)
        .join(Prediction, Prediction.id == Feedback.prediction_id)
        .where(Prediction.input_id == input_id, Feedback.source == LABELLER)
        .limit(1)
    )


def _locked_input_of(session: Session, prediction_id: int) -> int:
    """The input of a prediction, its row locked (PostgreSQL) until the transaction ends:
    two corrections of one input are checked one after the other."""
    input_id = session.scalar(select(Prediction.input_id).where(Prediction.id == prediction_id))
    if input_id is None:
        raise NotFoundError(f"no prediction {prediction_id}")
    session.execute(select(InputData.id).where(InputData.id == input_id).with_for_update())
    return input_id


def record_correction(
    session: Session, *, prediction_id: int, label: int, source: str, note: str | None = None
) -> int:
    """Store a correction after the checks; returns its id. Raises NotFoundError for an
    unknown prediction, ConflictError when a labeller already labelled the input."""
    if source not in (LABELLER, ANONYMOUS):
        raise ValueError(f"unknown feedback source {source!r}")
    if not 0 <= label <= 9:
        raise ValueError(f"label {label} is not a digit 0..9")
    input_id = _locked_input_of(session, prediction_id)
    taken = labeller_feedback_of(session, input_id)
    if taken is not None:
        raise ConflictError(
            f"input {input_id} already has a labeller's label (feedback {taken});"
            f" a labeller can undo it first (DELETE /api/v1/feedback/{taken})"
        )
    row = Feedback(prediction_id=prediction_id, label=label, note=note, source=source)
    session.add(row)
    session.flush()
    return row.id


def _anonymous(session: Session, feedback_id: int) -> Feedback:
    row = session.get(Feedback, feedback_id)
    if row is None:
        raise NotFoundError(f"no feedback {feedback_id}")
    if row.source != ANONYMOUS:
        raise ConflictError(f"feedback {feedback_id} is already a labeller's")
    return row


def confirm(session: Session, *, feedback_id: int) -> int:
    """A labeller agrees with an anonymous correction: the same label, now theirs."""
    row = _anonymous(session, feedback_id)
    return record_correction(
        session,
        prediction_id=row.prediction_id,
        label=row.label,
        source=LABELLER,
        note=f"confirms anonymous feedback {feedback_id}",
    )


def reject(session: Session, *, feedback_id: int, label: int) -> int:
    """A labeller disagrees with an anonymous correction and gives the right label."""
    row = _anonymous(session, feedback_id)
    if row.label == label:
        # A valid label that conflicts with what the feedback says: 409, as the other
        # refusals that depend on the stored rows (a 422 would call the body malformed).
        raise ConflictError(
            f"feedback {feedback_id} gave {label} too: confirm it instead of rejecting it"
        )
    return record_correction(
        session,
        prediction_id=row.prediction_id,
        label=label,
        source=LABELLER,
        note=f"rejects anonymous feedback {feedback_id} (it said {row.label})",
    )


def undo(session: Session, *, feedback_id: int) -> int:
    """Remove a labeller's correction that no model was trained on; returns its input."""
    row = session.get(Feedback, feedback_id, with_for_update=True)
    if row is None:
        raise NotFoundError(f"no feedback {feedback_id}")
    if row.source != LABELLER:
        raise ConflictError(f"feedback {feedback_id} is anonymous; only a labeller's is undone")
    trained = session.scalar(
        select(TrainingFeedback.model_id).where(TrainingFeedback.feedback_id == feedback_id)
    )
    if trained is not None:
        raise ConflictError(
            f"feedback {feedback_id} trained a model already; give a new label instead"
        )
    input_id = session.scalar(select(Prediction.input_id).where(Prediction.id == row.prediction_id))
    session.execute(delete(Feedback).where(Feedback.id == feedback_id))
    return int(input_id or 0)


@dataclass(frozen=True)
class QueueItem:
    input_id: int
    prediction_id: int
    model_version: str
    predicted: int
    confidence: float
    margin: float  # best minus second-best probability
    top3: list[tuple[int, float]]
    anonymous_label: int | None  # the latest anonymous correction, if any
    anonymous_feedback_id: int | None
    is_digit: bool | None = None  # the model's verdict; None: stored before there was one

    @property
    def disagrees(self) -> bool:
        return self.anonymous_label is not None and self.anonymous_label != self.predicted


def _second_best(dialect: str) -> ColumnElement[Any]:
    # The second-largest of the ten probabilities, computed by the database so that the
    # queue is ordered there: float4[] on PostgreSQL, a JSON list on SQLite.
    if dialect == "postgresql":
        values = "SELECT p FROM unnest(predictions.probabilities) AS p ORDER BY p"
    else:
        values = "SELECT value FROM json_each(predictions.probabilities) ORDER BY value"
    sql = f"({values} DESC LIMIT 1 OFFSET 1)"
    return literal_column(sql)


def _waiting() -> ColumnElement[bool]:
    """Inputs without a trusted label: none given with them, none from a labeller."""
    trusted = (
        select(Feedback.id)
        .join(Prediction, Prediction.id == Feedback.prediction_id)
        .where(Prediction.input_id == InputData.id, Feedback.source == LABELLER)
    )
    return and_(InputData.label.is_(None), ~exists(trusted))


def count_waiting(session: Session) -> int:
    """How many stored inputs wait for a trusted label."""
    return int(session.scalar(select(func.count()).select_from(InputData).where(_waiting())) or 0)


def queue(session: Session, *, limit: int) -> list[QueueItem]:
    """Inputs waiting for a trusted label, most informative first: those whose anonymous
    correction disagrees with the model (a mistake or an attack, either way worth a
    look), then the smallest margin between the model's two best answers; those the
    model answered as not a digit come after every digit, however small their margin
    (a doodle's margin is small and teaches nothing), unless someone said which digit
    it was."""
    # The latest prediction of each input: none newer for the same input (an anti-join
    # on ix_predictions_input_id, cheaper than grouping every prediction).
    newer = aliased(Prediction)
    latest = ~exists(
        select(newer.id).where(newer.input_id == Prediction.input_id, newer.id > Prediction.id)
    )
    last_anonymous = (
        select(func.max(Feedback.id).label("id"), Prediction.input_id)
        .join(Prediction, Prediction.id == Feedback.prediction_id)
        .where(Feedback.source == ANONYMOUS)
        .group_by(Prediction.input_id)
        .subquery()
    )
    anonymous = select(Feedback.id, Feedback.label).subquery()
    second = _second_best(session.get_bind().dialect.name)
    margin = (Prediction.confidence - second).label("margin")
    disagrees = and_(anonymous.c.label.is_not(None), anonymous.c.label != Prediction.label)
    # NULL (stored before the verdict) sorts with the digits.
    refused = case((Prediction.is_digit.is_(False), 1), else_=0)
    query = (
        select(Prediction, ModelRow.version, margin, anonymous.c.id, anonymous.c.label)
        .join(InputData, InputData.id == Prediction.input_id)
        .join(ModelRow, ModelRow.id == Prediction.model_id)
        .outerjoin(last_anonymous, last_anonymous.c.input_id == Prediction.input_id)
        .outerjoin(anonymous, anonymous.c.id == last_anonymous.c.id)
        .where(latest, _waiting())
        .order_by(disagrees.desc(), refused.asc(), margin.asc(), Prediction.input_id.asc())
        .limit(limit)
    )
    items = []
    for prediction, version, gap, anon_id, anon_label in session.execute(query):
        probs = [float(p) for p in prediction.probabilities]
        best = sorted(range(10), key=lambda d: -probs[d])[:3]
        items.append(
            QueueItem(
                input_id=prediction.input_id,
                prediction_id=prediction.id,
                model_version=version,
                predicted=prediction.label,
                confidence=prediction.confidence,
                margin=max(0.0, float(gap)),
                top3=[(d, probs[d]) for d in best],
                anonymous_label=anon_label,
                anonymous_feedback_id=anon_id,
                is_digit=prediction.is_digit,
            )
        )
    return items
