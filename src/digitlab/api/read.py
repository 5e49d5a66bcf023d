"""POST /api/v1/read: a whole number in one picture, read digit by digit and stored; the
stored readings, and their correction as a whole string."""

from __future__ import annotations

import time
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from digitlab.api.auth import ViewerDep
from digitlab.api.deps import API_PREFIX, ServiceDep
from digitlab.api.labeller import FEEDBACK_ERRORS, FeedbackSourceDep
from digitlab.api.params import Offset, WholeNumber, row_id
from digitlab.api.predict import PREDICT_ERRORS
from digitlab.api.predict_limit import PredictionAllowed
from digitlab.api.responses import GUARDED, responses
from digitlab.api.review import _answers
from digitlab.api.schemas import ImageIn
from digitlab.api.service import Service
from digitlab.api.uploads import read_one
from digitlab.inference.numbers import MAX_DIGITS, Reading, read_number
from digitlab.scoring.numbers import store as store_reading
from digitlab.store import db
from digitlab.store import readings as store
from digitlab.store.readings import ReadingRecord

router = APIRouter(prefix=API_PREFIX, tags=["read"])
ReadingId = Annotated[int, row_id("reading"), WholeNumber]
Box = Annotated[list[int], Field(min_length=4, max_length=4, description="x, y, width, height")]

_IMAGE = ImageIn.model_json_schema()["properties"]["image"]
READ_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {"type": "object", "required": ["image"], "properties": {"image": _IMAGE}}
            },
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {
                        "file": {"type": "string", "format": "binary", "description": "An image"}
                    },
                }
            },
        },
    }
}


class DigitOut(BaseModel):
    prediction: int = Field(description="The digit read")
    confidence: float = Field(description="Its probability")
    is_digit: bool = Field(description="The model's verdict that the box holds a digit")
    box: Box = Field(description="Where it is in the picture, in the picture's pixels")
    prediction_id: int = Field(description="The digit's stored prediction")


class ReadOut(BaseModel):
    text: str = Field(description="The number, its digits left to right")
    confidence: float = Field(description="The probability that every digit is right")
    digits: list[DigitOut] = Field(description=f"1 to {MAX_DIGITS} digits, left to right")
    reading_id: int
    model_version: str
    latency_ms: float


class ReadingOut(BaseModel):
    id: int
    model_version: str
    text: str
    confidence: float
    source: str
    corrected_text: str | None
    corrected_by: str | None = Field(description="labeller or anonymous")
    created_at: Any
    digits: list[DigitOut]


class CorrectIn(BaseModel):
    text: str = Field(
        pattern=r"^[0-9]{1,12}$", description="The right number, 1 to 12 digits, e.g. 2026"
    )


class CorrectOut(BaseModel):
    reading_id: int
    text: str
    feedback_ids: list[int] = Field(
        description="One correction per digit; empty when the number of digits differs"
        " from the number read (the boxes cannot be matched to the digits)"
    )


def _stored(service: Service, reading: Reading, source: str, original: bytes) -> int:
    model_id = service.model_id(reading.batch.model)
    return store_reading(service.engine, reading, model_id, source, original)


def _reading_out(record: ReadingRecord) -> ReadingOut:
    digits = [
        DigitOut(
            prediction=d.label,
            confidence=d.confidence,
            is_digit=True,
            box=list(d.box),
            prediction_id=d.prediction_id,
        )
        for d in record.digits
    ]
    fields = {k: getattr(record, k) for k in ReadingOut.model_fields if k != "digits"}
    return ReadingOut(**fields, digits=digits)


@router.post(
    "/read",
    response_model=ReadOut,
    openapi_extra=READ_BODY,
    responses=PREDICT_ERRORS,
    dependencies=[PredictionAllowed],
)
async def read(request: Request, service: ServiceDep) -> ReadOut:
    """Read a whole number (1 to 12 digits) in one image; it is stored before the answer."""
    start = time.perf_counter()
    upload = await read_one(request)
    # Segmenting and reading take milliseconds: off the event loop.
    reading = await run_in_threadpool(read_number, upload.data, service.predictor.predict)
    reading_id = await run_in_threadpool(_stored, service, reading, upload.source, upload.data)
    with db.transaction(service.engine) as session:
        record = store.get_reading(session, reading_id)
    service.metrics.serving(reading.batch.model.version)
    return ReadOut(
        text=reading.text,
        confidence=reading.confidence,
        digits=_reading_out(record).digits,
        reading_id=reading_id,
        model_version=reading.batch.model.version,
        latency_ms=(time.perf_counter() - start) * 1000,
    )


@router.get("/readings", response_model=list[ReadingOut], responses=GUARDED)
def list_readings(
    _viewer: ViewerDep,
    service: ServiceDep,
    limit: Annotated[int, Query(ge=1, le=500, description="Page size"), WholeNumber] = 50,
    offset: Offset = 0,
) -> list[ReadingOut]:
    """The stored readings, newest first."""
    with db.transaction(service.engine) as session:
        return [_reading_out(r) for r in store.list_readings(session, limit=limit, offset=offset)]


@router.get("/readings/{reading_id}", response_model=ReadingOut, responses=GUARDED | responses(404))
def get_one_reading(reading_id: ReadingId, _viewer: ViewerDep, service: ServiceDep) -> ReadingOut:
    """One stored reading with its digits and boxes."""
    with _answers(), db.transaction(service.engine) as session:
        return _reading_out(store.get_reading(session, reading_id))


@router.post(
    "/readings/{reading_id}/correct",
    response_model=CorrectOut,
    status_code=201,
    responses=FEEDBACK_ERRORS | responses(413, 422, 500, 503),
)
def correct_reading(
    reading_id: ReadingId, source: FeedbackSourceDep, body: CorrectIn, service: ServiceDep
) -> CorrectOut:
    """Record the right number for a reading; each digit becomes a correction of its
    prediction, trusted (trained on) only from a labeller."""
    with _answers(), db.transaction(service.engine) as session:
        ids = store.correct_reading(session, reading_id=reading_id, text=body.text, source=source)
    service.metrics.feedback.labels(source).inc()
    return CorrectOut(reading_id=reading_id, text=body.text, feedback_ids=ids)
