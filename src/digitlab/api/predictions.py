"""Stored predictions, their input images, and feedback on them.

The reads need the viewer credential when `DIGITLAB_VIEWER_TOKEN` is set (see `auth`).
Feedback stays open: the Recognise page sends it anonymously right after a prediction,
and it writes a label without revealing anything stored. Only a labeller's (see
`labeller`) is trusted; anonymous ones are rate-limited per client address."""

from __future__ import annotations

import dataclasses
import io
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Response
from PIL import Image
from sqlalchemy import select

from digitlab.api.auth import ImageAccessDep, ViewerDep
from digitlab.api.deps import API_PREFIX, ServiceDep, SessionDep
from digitlab.api.labeller import FEEDBACK_ERRORS, FeedbackSourceDep
from digitlab.api.params import (
    VERSION_PATTERN,
    Boolean,
    DateTime,
    InputId,
    Offset,
    PredictionId,
    WholeNumber,
    utc,
)
from digitlab.api.responses import GUARDED, responses
from digitlab.api.review import store_correction
from digitlab.api.schemas import FeedbackIn, FeedbackOut, PredictionOut, PredictionPage
from digitlab.store import crud, db, queries
from digitlab.store.models import InputData
from digitlab.store.queries import PredictionRecord

# The prefix on the router itself: metrics label requests by the full route path.
router = APIRouter(prefix=API_PREFIX, tags=["predictions"])
# The 401 in GUARDED: the viewer token is set and the request does not carry it.
FOUND = GUARDED | responses(404)


def _out(record: PredictionRecord) -> PredictionOut:
    # The record's fields are the response's, plus where to fetch the image.
    return PredictionOut(
        **dataclasses.asdict(record), image_url=f"/api/v1/inputs/{record.input_id}/image.png"
    )


@router.get("/predictions", response_model=PredictionPage, responses=GUARDED)
def list_predictions(
    _viewer: ViewerDep,  # first: checked before a transaction is opened
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=500, description="Page size"), WholeNumber] = 50,
    offset: Offset = 0,
    model: Annotated[
        str | None, Query(pattern=VERSION_PATTERN, description="Only this model version")
    ] = None,
    label: Annotated[
        int | None, Query(ge=0, le=9, description="Predicted label"), WholeNumber
    ] = None,
    wrong: Annotated[
        bool, Query(description="Only those whose true label differs"), Boolean
    ] = False,
    since: Annotated[
        datetime | None, Query(description="Made at or after (RFC 3339; naive: UTC)"), DateTime
    ] = None,
    until: Annotated[
        datetime | None, Query(description="Made before (RFC 3339; naive: UTC)"), DateTime
    ] = None,
) -> PredictionPage:
    """Stored predictions, newest first, with filters."""
    rows = queries.recent_predictions(
        session, limit=limit + 1, offset=offset, model=model, label=label, wrong=wrong,
        since=utc(since), until=utc(until),
    )  # fmt: skip
    more = len(rows) > limit
    return PredictionPage(
        items=[_out(r) for r in rows[:limit]],
        limit=limit,
        offset=offset,
        next_offset=offset + limit if more else None,
    )


@router.get("/predictions/{prediction_id}", response_model=PredictionOut, responses=FOUND)
def get_prediction(
    prediction_id: PredictionId, _viewer: ViewerDep, session: SessionDep
) -> PredictionOut:
    """One stored prediction."""
    record = queries.get_prediction(session, prediction_id=prediction_id)
    if record is None:
        raise HTTPException(404, f"no prediction {prediction_id}")
    return _out(record)


@router.get(
    "/inputs/{input_id}/image.png",
    response_class=Response,
    responses={
        200: {
            "content": {"image/png": {"schema": {"type": "string", "format": "binary"}}},
            "description": "The 28x28 image",
        },
        **FOUND,
    },
)
def input_image(input_id: InputId, _access: ImageAccessDep, session: SessionDep) -> Response:
    """The 28x28 image the model saw for an input, as PNG (light ink on black)."""
    data = session.scalars(select(InputData.image).where(InputData.id == input_id)).first()
    if data is None:
        raise HTTPException(404, f"no input {input_id}")
    out = io.BytesIO()
    Image.fromarray(crud.image_from_bytes(data)).save(out, format="PNG")
    return Response(out.getvalue(), media_type="image/png")


@router.post(
    "/predictions/{prediction_id}/feedback",
    response_model=FeedbackOut,
    status_code=201,
    responses=FEEDBACK_ERRORS | responses(413, 422, 500, 503),
)
def feedback(
    prediction_id: PredictionId,
    source: FeedbackSourceDep,
    body: FeedbackIn,
    service: ServiceDep,
) -> FeedbackOut:
    """Record the right answer for a prediction; the latest feedback counts. With the
    labeller token it is a trusted label; without, an anonymous one (rate-limited)."""
    # Its own transaction, committed before the response goes out.
    with db.transaction(service.engine) as session:
        feedback_id = store_correction(
            session, prediction_id=prediction_id, label=body.label, note=body.note, source=source
        )
    service.metrics.feedback.labels(source).inc()
    return FeedbackOut(id=feedback_id, prediction_id=prediction_id, label=body.label)
