"""Readings of whole numbers: stored with each digit as an input and a prediction of its
own (so that the existing feedback loop trains on corrected digits), and corrected as a
whole string."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import numpy.typing as npt
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from digitlab.store import crud
from digitlab.store.models import MAX_ORIGINAL_BYTES, ModelRow, Reading, ReadingDigit
from digitlab.store.review import NotFoundError, record_correction


@dataclass(frozen=True)
class DigitIn:
    image: npt.NDArray[np.uint8]  # (28, 28) the model saw
    probabilities: npt.NDArray[np.float32]  # (10,)
    is_digit: bool
    box: tuple[int, int, int, int]


@dataclass(frozen=True)
class StoredDigit:
    position: int
    prediction_id: int
    input_id: int
    label: int
    confidence: float
    box: tuple[int, int, int, int]


@dataclass(frozen=True)
class ReadingRecord:
    id: int
    model_version: str
    text: str
    confidence: float
    source: str
    corrected_text: str | None
    corrected_by: str | None
    created_at: datetime
    digits: list[StoredDigit]


def record_reading(
    session: Session,
    *,
    original: bytes,
    source: str,
    model_id: int,
    digits: list[DigitIn],
    confidence: float,
    latency_ms: float,
) -> tuple[int, list[tuple[int, int]]]:
    """Store a reading and each of its digits (an input and a prediction each); returns the
    reading's id and the (input id, prediction id) per digit."""
    text = "".join(str(int(d.probabilities.argmax())) for d in digits)
    row = Reading(
        model_id=model_id,
        original=original if len(original) <= MAX_ORIGINAL_BYTES else None,
        sha256=hashlib.sha256(original).hexdigest(),
        source=source,
        text=text,
        confidence=confidence,
        latency_ms=latency_ms,
    )
    session.add(row)
    session.flush()
    ids = []
    for position, digit in enumerate(digits):
        input_id = crud.record_input(session, image=digit.image, source=f"reading:{row.id}")
        prediction_id = crud.record_prediction(
            session,
            input_id=input_id,
            model_id=model_id,
            probabilities=digit.probabilities,
            latency_ms=latency_ms / len(digits),
            is_digit=digit.is_digit,
        )
        x, y, w, h = digit.box
        session.add(
            ReadingDigit(
                reading_id=row.id,
                position=position,
                prediction_id=prediction_id,
                x=x,
                y=y,
                width=w,
                height=h,
            )
        )
        ids.append((input_id, prediction_id))
    session.flush()
    return row.id, ids


def get_reading(session: Session, reading_id: int) -> ReadingRecord:
    """One reading with its digits; NotFoundError when there is none."""
    found = list_readings(session, limit=1, reading_id=reading_id)
    if not found:
        raise NotFoundError(f"no reading {reading_id}")
    return found[0]


def list_readings(
    session: Session, *, limit: int = 50, offset: int = 0, reading_id: int | None = None
) -> list[ReadingRecord]:
    """The newest readings first, each with its digits."""
    from digitlab.store.models import Prediction

    query = (
        select(Reading, ModelRow.version)
        .join(ModelRow, ModelRow.id == Reading.model_id)
        .order_by(Reading.id.desc())
        .limit(limit)
        .offset(offset)
    )
    if reading_id is not None:
        query = query.where(Reading.id == reading_id)
    rows = session.execute(query).all()
    ids = [r.id for r, _ in rows]
    digits: dict[int, list[StoredDigit]] = {k: [] for k in ids}
    if ids:
        for d, p in session.execute(
            select(ReadingDigit, Prediction)
            .join(Prediction, Prediction.id == ReadingDigit.prediction_id)
            .where(ReadingDigit.reading_id.in_(ids))
            .order_by(ReadingDigit.reading_id, ReadingDigit.position)
        ).all():
            digits[d.reading_id].append(
                StoredDigit(
                    d.position,
                    p.id,
                    p.input_id,
                    p.label,
                    p.confidence,
                    (d.x, d.y, d.width, d.height),
                )
            )
    return [
        ReadingRecord(
            id=r.id,
            model_version=version,
            text=r.text,
            confidence=r.confidence,
            source=r.source,
            corrected_text=r.corrected_text,
            corrected_by=r.corrected_by,
            created_at=r.created_at,
            digits=digits[r.id],
        )
        for r, version in rows
    ]


def correct_reading(session: Session, *, reading_id: int, text: str, source: str) -> list[int]:
    """Store the right string for a reading. When it has as many digits as were read, each
    digit becomes a correction of its prediction (feedback, trusted when `source` is a
    labeller); returns those feedback ids (none when the lengths differ: which box holds
    which digit is then unknown). ConflictError when a labeller labelled a digit already."""
    row = session.get(Reading, reading_id, with_for_update=True)
    if row is None:
        raise NotFoundError(f"no reading {reading_id}")
    row.corrected_text = text
    row.corrected_by = source
    predictions = session.scalars(
        select(ReadingDigit.prediction_id)
        .where(ReadingDigit.reading_id == reading_id)
        .order_by(ReadingDigit.position)
    ).all()
    if len(predictions) != len(text):
        session.flush()
        return []
    return [
        record_correction(
            session,
            prediction_id=prediction_id,
            label=int(char),
            source=source,
            note=f"reading {reading_id}: {text}",
        )
        for prediction_id, char in zip(predictions, text, strict=True)
    ]


def count_readings(session: Session, *, since: datetime | None = None) -> tuple[int, int]:
    """(readings, corrected readings), since a moment if given."""
    query = select(func.count(), func.count(Reading.corrected_text))
    if since is not None:
        query = query.where(Reading.created_at >= since)
    total, corrected = session.execute(query).one()
    return int(total), int(corrected)
