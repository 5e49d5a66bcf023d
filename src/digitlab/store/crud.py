"""Writes to the prediction store: keyword-only functions taking a session; the caller's
`db.transaction(engine)` block is the unit of work that commits or rolls back as one.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import psycopg
from sqlalchemy import func, insert, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from digitlab.store.models import (
    IMAGE_BYTES,
    MAX_ORIGINAL_BYTES,
    Feedback,
    InputData,
    ModelRow,
    Prediction,
)

Images = npt.NDArray[np.uint8]  # (N, 28, 28)
Probs = npt.NDArray[np.float32]  # (N, 10)


def image_bytes(image: npt.NDArray[Any]) -> bytes:
    """The 784 raw bytes stored for a 28x28 uint8 image (row by row)."""
    if image.shape != (28, 28) or image.dtype != np.uint8:
        raise ValueError(f"expected a 28x28 uint8 image, got {image.shape} {image.dtype}")
    return np.ascontiguousarray(image).tobytes()


def image_from_bytes(data: bytes) -> Images:
    if len(data) != IMAGE_BYTES:
        raise ValueError(f"a stored image has {IMAGE_BYTES} bytes, not {len(data)}")
    return np.frombuffer(data, dtype=np.uint8).reshape(28, 28).copy()


def check_label(label: int | None) -> None:
    if label is not None and not 0 <= label <= 9:
        raise ValueError(f"label {label} is not a digit 0..9")


# The key of the PostgreSQL advisory lock that serialises activations ("digitlab" in ASCII).
ACTIVATION_LOCK = 0x6469676974_6C6162


def register_model(
    session: Session,
    *,
    version: str,
    dataset: str,
    onnx_sha256: str,
    metrics: dict[str, Any],
    active: bool,
) -> int:
    """The id of `version` in `models`, inserting it when new (safe against a concurrent
    insert of the same version); `active` makes it the only active one."""
    dialect = session.get_bind().dialect.name
    insert_fn = postgresql.insert if dialect == "postgresql" else sqlite.insert
    values = {"version": version, "dataset": dataset, "onnx_sha256": onnx_sha256}
    session.execute(
        insert_fn(ModelRow)
        .values(**values, metrics=metrics)
        .on_conflict_do_nothing(index_elements=["version"])
    )
    model_id = session.scalars(select(ModelRow.id).where(ModelRow.version == version)).one()
    if active:
        if dialect == "postgresql":
            # One activation at a time: two concurrent ones would each clear the other
            # rows' flag, then both set their own, and the second to commit would break
            # the one-active index (a 503 under load). SQLite serialises writers itself.
            session.execute(select(func.pg_advisory_xact_lock(ACTIVATION_LOCK)))
        # Two statements: a unique index is checked row by row during an UPDATE.
        session.execute(
            update(ModelRow)
            .where(ModelRow.is_active, ModelRow.id != model_id)
            .values(is_active=False)
        )
        session.execute(
            update(ModelRow)
            .where(ModelRow.id == model_id, ModelRow.is_active.is_(False))
            .values(is_active=True)
        )
    return model_id


def record_input(
    session: Session,
    *,
    image: npt.NDArray[Any],
    source: str,
    label: int | None = None,
    original: bytes | None = None,
) -> int:
    """Store an image the model is about to see; returns its id."""
    data = image_bytes(image)
    check_label(label)
    if original is not None and len(original) > MAX_ORIGINAL_BYTES:
        original = None  # too big to keep; the 28x28 image the model saw is kept
    row = InputData(
        image=data,
        original=original,
        sha256=hashlib.sha256(data).hexdigest(),
        source=source,
        label=label,
    )
    session.add(row)
    session.flush()
    return row.id


def read_image(session: Session, *, input_id: int) -> Images:
    """The stored 28x28 image, read from the database (not from the session's cache)."""
    data = session.scalars(select(InputData.image).where(InputData.id == input_id)).one()
    return image_from_bytes(data)


def record_prediction(
    session: Session,
    *,
    input_id: int,
    model_id: int,
    probabilities: npt.NDArray[np.float32],
    latency_ms: float,
    is_digit: bool | None = None,
) -> int:
    """Store the prediction made for a stored input; returns its id. `is_digit`: the
    model's not-a-digit verdict (None: unknown)."""
    probs = [float(p) for p in probabilities]
    prediction = Prediction(
        input_id=input_id,
        model_id=model_id,
        label=int(np.argmax(probabilities)),
        confidence=min(1.0, max(probs)),
        probabilities=probs,
        latency_ms=latency_ms,
        is_digit=is_digit,
    )
    session.add(prediction)
    session.flush()
    return prediction.id


def record_feedback(
    session: Session,
    *,
    prediction_id: int,
    label: int,
    note: str | None = None,
    source: str = "anonymous",
) -> int:
    """A person's correction of a prediction, unchecked against what is stored (the
    service uses `review.record_correction`); the latest one counts."""
    check_label(label)
    row = Feedback(prediction_id=prediction_id, label=label, note=note, source=source)
    session.add(row)
    session.flush()
    return row.id


@dataclass(frozen=True)
class Group:
    """Predictions to store together, one image, source and label (or None) per row;
    what the service's writers take."""

    images: Images
    probabilities: Probs
    model_id: int
    sources: Sequence[str]
    labels: Sequence[int | None]
    latency_ms: float  # per image
    originals: Sequence[bytes | None] | None = None
    # Per image, the model's not-a-digit verdict (digitlab.inference.verdict); None: unknown.
    is_digit: Sequence[bool] | None = None
    # Per image, a label an anonymous client sent with it: kept as anonymous feedback on
    # its prediction, never as the input's (trusted) label.
    anonymous_labels: Sequence[int | None] | None = None


@dataclass(frozen=True)
class Rows:
    """Checked columns for `input_data`, and the predicted label, confidence and
    probabilities of each image: what every bulk write stores."""

    images: list[bytes]
    originals: list[bytes | None]
    sha256: list[str]
    sources: list[str]
    labels: list[int | None]
    predicted: list[int]
    confidence: list[float]
    probabilities: Probs
    is_digit: list[bool | None]

    def inputs(self) -> list[dict[str, Any]]:
        """One `input_data` row per image, as a dict of column values."""
        names = ("image", "original", "sha256", "source", "label")
        columns = (self.images, self.originals, self.sha256, self.sources, self.labels)
        return [dict(zip(names, values, strict=True)) for values in zip(*columns, strict=True)]


def check_group(
    images: Images, probabilities: Probs, sources: Sequence[str], labels: Sequence[int | None]
) -> None:
    """Raise ValueError unless the columns of a group of predictions fit together."""
    if not len(images) == len(probabilities) == len(sources) == len(labels):
        raise ValueError("images, probabilities, sources and labels differ in length")
    if images.shape[1:] != (28, 28) or images.dtype != np.uint8:
        raise ValueError(f"expected 28x28 uint8 images, got {images.shape} {images.dtype}")
    for label in labels:
        check_label(label)


def kept_originals(originals: Sequence[bytes | None] | None, n: int) -> list[bytes | None]:
    """The uploads as sent, where small enough to keep (else only the 28x28 is kept)."""
    return [o if o and len(o) <= MAX_ORIGINAL_BYTES else None for o in originals or [None] * n]


def labels_and_confidence(probabilities: Probs) -> tuple[list[int], list[float]]:
    """The predicted label of each row and its probability (float32 sums can pass 1)."""
    confidence = np.minimum(probabilities.max(axis=1), 1.0).astype(float)
    return probabilities.argmax(axis=1).tolist(), confidence.tolist()


def verdicts(is_digit: Sequence[bool] | None, n: int) -> list[bool | None]:
    """The verdict of each of `n` rows as the column takes it (None: unknown)."""
    if is_digit is None:
        return [None] * n
    if len(is_digit) != n:
        raise ValueError(f"{len(is_digit)} verdicts for {n} predictions")
    return [bool(v) for v in is_digit]


def prepare_rows(
    images: Images,
    probabilities: Probs,
    sources: Sequence[str],
    labels: Sequence[int | None],
    originals: Sequence[bytes | None] | None,
    is_digit: Sequence[bool] | None = None,
) -> Rows:
    check_group(images, probabilities, sources, labels)
    data = [image_bytes(image) for image in images]
    predicted, confidence = labels_and_confidence(probabilities)
    return Rows(
        images=data,
        originals=kept_originals(originals, len(images)),
        sha256=[hashlib.sha256(d).hexdigest() for d in data],
        sources=list(sources),
        labels=list(labels),
        predicted=predicted,
        confidence=confidence,
        probabilities=probabilities,
        is_digit=verdicts(is_digit, len(images)),
    )


def record_batch(
    session: Session,
    *,
    images: Images,
    probabilities: Probs,
    model_id: int,
    sources: Sequence[str],
    labels: Sequence[int | None],
    latency_ms: float,
    originals: Sequence[bytes | None] | None = None,
    is_digit: Sequence[bool] | None = None,
) -> int:
    """Store many inputs with their predictions; COPY on PostgreSQL, multi-row INSERTs
    elsewhere. `latency_ms` is per image. Returns the number of predictions stored."""
    if session.get_bind().dialect.name != "postgresql":
        return len(
            record_predictions(
                session,
                images=images,
                probabilities=probabilities,
                model_id=model_id,
                sources=sources,
                labels=labels,
                latency_ms=latency_ms,
                originals=originals,
                is_digit=is_digit,
            )
        )
    rows = prepare_rows(images, probabilities, sources, labels, originals, is_digit)
    _copy_batch(session, rows, model_id, latency_ms)
    return len(rows.images)


def _copy_batch(session: Session, rows: Rows, model_id: int, latency_ms: float) -> None:
    # Ids come from the table's own sequence, so COPY can write both tables at once.
    ids = session.scalars(
        text(
            "SELECT nextval(pg_get_serial_sequence('input_data', 'id')) FROM generate_series(1, :n)"
        ),
        {"n": len(rows.images)},
    ).all()
    raw = session.connection().connection.driver_connection
    assert isinstance(raw, psycopg.Connection)
    probs = rows.probabilities.astype(float).tolist()
    with raw.cursor() as cursor:
        with cursor.copy(
            "COPY input_data (id, image, original, sha256, source, label) "
            "FROM STDIN (FORMAT BINARY)"
        ) as copy:
            copy.set_types(["int8", "bytea", "bytea", "varchar", "varchar", "int2"])
            columns = (rows.images, rows.originals, rows.sha256, rows.sources, rows.labels)
            for i, *values in zip(ids, *columns, strict=True):
                copy.write_row((i, *values))
        with cursor.copy(
            "COPY predictions"
            " (input_id, model_id, label, confidence, probabilities, latency_ms, is_digit)"
            " FROM STDIN (FORMAT BINARY)"
        ) as copy:
            copy.set_types(["int8", "int4", "int2", "float8", "float4[]", "float8", "bool"])
            for k, i in enumerate(ids):
                copy.write_row(
                    (
                        i, model_id, rows.predicted[k], rows.confidence[k], probs[k],
                        latency_ms, rows.is_digit[k],
                    )
                )  # fmt: skip


def record_predictions(
    session: Session,
    *,
    images: Images,
    probabilities: Probs,
    model_id: int,
    sources: Sequence[str],
    labels: Sequence[int | None],
    latency_ms: float,
    originals: Sequence[bytes | None] | None = None,
    anonymous_labels: Sequence[int | None] | None = None,
    is_digit: Sequence[bool] | None = None,
) -> list[tuple[int, int]]:
    """Store inputs with their predictions and return their (input id, prediction id)
    pairs, in order: what the service answers with. One multi-row INSERT per table;
    `anonymous_labels` (per image, or None) become anonymous feedback rows."""
    rows = prepare_rows(images, probabilities, sources, labels, originals, is_digit)
    input_ids = session.scalars(
        insert(InputData).returning(InputData.id, sort_by_parameter_order=True), rows.inputs()
    ).all()
    probs = rows.probabilities.astype(float).tolist()
    prediction_ids = session.scalars(
        insert(Prediction).returning(Prediction.id, sort_by_parameter_order=True),
        [
            {
                "input_id": input_id,
                "model_id": model_id,
                "label": rows.predicted[k],
                "confidence": rows.confidence[k],
                "probabilities": probs[k],
                "latency_ms": latency_ms,
                "is_digit": rows.is_digit[k],
            }
            for k, input_id in enumerate(input_ids)
        ],
    ).all()
    given = list(anonymous_labels or [None] * len(prediction_ids))
    for label in given:
        check_label(label)
    feedback = [
        {"prediction_id": prediction_id, "label": label, "source": "anonymous"}
        for prediction_id, label in zip(prediction_ids, given, strict=True)
        if label is not None
    ]
    if feedback:
        session.execute(insert(Feedback), feedback)
    return list(zip(input_ids, prediction_ids, strict=True))
