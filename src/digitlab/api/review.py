"""The review queue and a labeller's verdicts, all behind the labeller token:

GET    /api/v1/review?limit=N              inputs waiting for a trusted label, best first
POST   /api/v1/feedback/{id}/confirm       an anonymous correction is right: now theirs
POST   /api/v1/feedback/{id}/reject        it is wrong; the body gives the right label
DELETE /api/v1/feedback/{id}               undo a labeller's correction (the page's undo)

Labels themselves go through the feedback path (`predictions.feedback`) like anyone's.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from digitlab.api.auth import image_url
from digitlab.api.deps import API_PREFIX, ServiceDep
from digitlab.api.errors import BadInputError
from digitlab.api.labeller import LABELLER_ONLY, LabellerDep
from digitlab.api.params import WholeNumber, row_id
from digitlab.api.responses import responses
from digitlab.api.schemas import Label
from digitlab.store import db
from digitlab.store import review as store
from digitlab.store.models import Feedback

router = APIRouter(prefix=API_PREFIX, tags=["review"])
FeedbackId = Annotated[int, row_id("feedback"), WholeNumber]
# 404 no such feedback; 409 it is a labeller's already, or the input has a labeller's label.
VERDICT_ERRORS = LABELLER_ONLY | responses(404, 409)


class Guess(BaseModel):
    label: int
    probability: float


class ReviewItem(BaseModel):
    input_id: int
    prediction_id: int = Field(description="Label it: POST /api/v1/predictions/{id}/feedback")
    model_version: str
    predicted: int
    confidence: float
    margin: float = Field(description="Best minus second-best probability: small is unsure")
    top3: list[Guess]
    anonymous_label: int | None = Field(description="The latest anonymous correction, if any")
    anonymous_feedback_id: int | None
    image_url: str


class ReviewPage(BaseModel):
    items: list[ReviewItem]
    remaining: int = Field(description="Inputs still waiting for a trusted label, these included")


class RejectIn(BaseModel):
    label: Label = Field(description="The right digit 0..9")


class LabelOut(BaseModel):
    id: int = Field(description="The labeller's feedback id")
    prediction_id: int
    label: int


class UndoOut(BaseModel):
    id: int
    input_id: int = Field(description="The input, back in the queue")


@contextmanager
def _answers() -> Iterator[None]:
    """The store's refusals as the HTTP answers a client can act on."""
    try:
        yield
    except store.NotFoundError as exc:
        raise HTTPException(404, str(exc)) from None
    except store.ConflictError as exc:
        raise HTTPException(409, str(exc)) from None
    except ValueError as exc:
        raise BadInputError(str(exc)) from None


def store_correction(
    session: Session, *, prediction_id: int, label: int, note: str | None, source: str
) -> int:
    """`store.record_correction`, its refusals as 404 / 409."""
    with _answers():
        return store.record_correction(
            session, prediction_id=prediction_id, label=label, note=note, source=source
        )


@router.get("/review", response_model=ReviewPage, responses=LABELLER_ONLY)
def review_queue(
    _labeller: LabellerDep,
    service: ServiceDep,
    limit: Annotated[int, Query(ge=1, le=200, description="How many to return")] = 20,
) -> ReviewPage:
    """Stored inputs without a trusted label, the most informative first."""
    with db.transaction(service.engine) as session:
        items = store.queue(session, limit=limit)
        remaining = store.count_waiting(session)
    return ReviewPage(
        items=[
            ReviewItem(
                input_id=i.input_id,
                prediction_id=i.prediction_id,
                model_version=i.model_version,
                predicted=i.predicted,
                confidence=i.confidence,
                margin=i.margin,
                top3=[Guess(label=d, probability=p) for d, p in i.top3],
                anonymous_label=i.anonymous_label,
                anonymous_feedback_id=i.anonymous_feedback_id,
                image_url=image_url(service.settings, i.input_id),
            )
            for i in items
        ],
        remaining=remaining,
    )


def _label_out(session: Session, feedback_id: int) -> LabelOut:
    row = session.get(Feedback, feedback_id)
    assert row is not None  # written in this transaction
    return LabelOut(id=row.id, prediction_id=row.prediction_id, label=row.label)


@router.post(
    "/feedback/{feedback_id}/confirm",
    response_model=LabelOut,
    status_code=201,
    responses=VERDICT_ERRORS,
)
def confirm(feedback_id: FeedbackId, _labeller: LabellerDep, service: ServiceDep) -> LabelOut:
    """An anonymous correction is right: its label becomes the labeller's."""
    with db.transaction(service.engine) as session, _answers():
        made = _label_out(session, store.confirm(session, feedback_id=feedback_id))
    service.metrics.feedback.labels(store.LABELLER).inc()
    return made


@router.post(
    "/feedback/{feedback_id}/reject",
    response_model=LabelOut,
    status_code=201,
    responses=VERDICT_ERRORS,
)
def reject(
    feedback_id: FeedbackId, body: RejectIn, _labeller: LabellerDep, service: ServiceDep
) -> LabelOut:
    """An anonymous correction is wrong: the labeller's label replaces it."""
    with db.transaction(service.engine) as session, _answers():
        made = _label_out(session, store.reject(session, feedback_id=feedback_id, label=body.label))
    service.metrics.feedback.labels(store.LABELLER).inc()
    return made


@router.delete("/feedback/{feedback_id}", response_model=UndoOut, responses=VERDICT_ERRORS)
def undo(feedback_id: FeedbackId, _labeller: LabellerDep, service: ServiceDep) -> UndoOut:
    """Undo a labeller's correction that no model has been trained on yet."""
    with db.transaction(service.engine) as session, _answers():
        input_id = store.undo(session, feedback_id=feedback_id)
    return UndoOut(id=feedback_id, input_id=input_id)
