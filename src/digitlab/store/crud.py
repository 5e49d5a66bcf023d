"""Writes to the prediction store: keyword-only functions taking a session; the caller's
`db.transaction(engine)` block is the unit of work that commits or rolls back as one.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import psycopg
from sqlalchemy import insert, select, text, update
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
) -> int:
    """Store the prediction made for a stored input; returns its id."""
    probs = [float(p) for p in probabilities]
    prediction = Prediction(
        input_id=input_id,
        model_id=model_id,
        label=int(np.argmax(probabilities)),
        confidence=min(1.0, max(probs)),
        probabilities=probs,
        latency_ms=latency_ms,
    )
    session.add(prediction)
    session.flush()
    return prediction.id


def record_feedback(
    session: Session, *, prediction_id: int, label: int, note: str | None = None
) -> int:
    """A person's correction of a prediction; the latest one counts."""
    check_label(label)
    row = Feedback(prediction_id=prediction_id, label=label, note=note)
    session.add(row)
    session.flush()
    return row.id


def _prepare(
    images: Images,
    probabilities: Probs,
    sources: Sequence[str],
    labels: Sequence[int | None],
    originals: Sequence[bytes | None] | None,
) -> tuple[list[dict[str, Any]], list[int], list[float], list[list[float]]]:
    """Checked rows for `input_data`, and the predicted label, confidence and
    probabilities of each image: what both bulk writes store."""
    n = len(images)
    if not n == len(probabilities) == len(sources) == len(labels):
        raise ValueError("images, probabilities, sources and labels differ in length")
    for label in labels:
        check_label(label)
    kept = [o if o and len(o) <= MAX_ORIGINAL_BYTES else None for o in originals or [None] * n]
    data = [image_bytes(image) for image in images]
    inputs = [
        {
            "image": d,
            "original": kept[i],
            "sha256": hashlib.sha256(d).hexdigest(),
            "source": sources[i],
            "label": labels[i],
        }
        for i, d in enumerate(data)
    ]
    predicted = probabilities.argmax(axis=1).tolist()
    confidence = np.minimum(probabilities.max(axis=1), 1.0).astype(float).tolist()
    return inputs, predicted, confidence, probabilities.astype(float).tolist()


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
            )
        )
    inputs, predicted, confidence, probs = _prepare(
        images, probabilities, sources, labels, originals
    )
    _copy_batch(session, inputs, predicted, confidence, probs, model_id, latency_ms)
    return len(inputs)


def _copy_batch(
    session: Session,
    inputs: list[dict[str, Any]],
    predicted: list[int],
    confidence: list[float],
    probs: list[list[float]],
    model_id: int,
    latency_ms: float,
) -> None:
    # Ids come from the table's own sequence, so COPY can write both tables at once.
    ids = session.scalars(
        text(
            "SELECT nextval(pg_get_serial_sequence('input_data', 'id')) FROM generate_series(1, :n)"
        ),
        {"n": len(inputs)},
    ).all()
    raw = session.connection().connection.driver_connection
    assert isinstance(raw, psycopg.Connection)
    with raw.cursor() as cursor:
        with cursor.copy(
            "COPY input_data (id, image, original, sha256, source, label) "
            "FROM STDIN (FORMAT BINARY)"
        ) as copy:
            copy.set_types(["int8", "bytea", "bytea", "varchar", "varchar", "int2"])
            for i, row in zip(ids, inputs, strict=True):
                copy.write_row(
                    (i, row["image"], row["original"], row["sha256"], row["source"], row["label"])
                )
        with cursor.copy(
            "COPY predictions (input_id, model_id, label, confidence, probabilities, latency_ms)"
            " FROM STDIN (FORMAT BINARY)"
        ) as copy:
            copy.set_types(["int8", "int4", "int2", "float8", "float4[]", "float8"])
            for k, i in enumerate(ids):
                copy.write_row((i, model_id, predicted[k], confidence[k], probs[k], latency_ms))


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
) -> list[tuple[int, int]]:
    """Store inputs with their predictions and return their (input id, prediction id)
    pairs, in order: what the service answers with. One multi-row INSERT per table."""
    inputs, predicted, confidence, probs = _prepare(
        images, probabilities, sources, labels, originals
    )
    input_ids = session.scalars(
        insert(InputData).returning(InputData.id, sort_by_parameter_order=True), inputs
    ).all()
    prediction_ids = session.scalars(
        insert(Prediction).returning(Prediction.id, sort_by_parameter_order=True),
        [
            {
                "input_id": input_ids[i],
                "model_id": model_id,
                "label": predicted[i],
                "confidence": confidence[i],
                "probabilities": probs[i],
                "latency_ms": latency_ms,
            }
            for i in range(len(inputs))
        ],
    ).all()
    return list(zip(input_ids, prediction_ids, strict=True))
