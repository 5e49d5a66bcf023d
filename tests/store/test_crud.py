"""Writes on both backends: images round-trip bit for bit, foreign keys and cascades
hold, the checks refuse bad labels and sizes, model registration is idempotent."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
from sqlalchemy import Engine, delete, func, insert, select

from digitlab.store import crud, db, queries
from digitlab.store.models import Feedback, InputData, ModelRow, Prediction

rng = np.random.default_rng(0)


def some_probs(n: int) -> np.ndarray:
    p = rng.random((n, 10)).astype(np.float32)
    return (p / p.sum(axis=1, keepdims=True)).astype(np.float32)


def new_model(engine: Engine, version: str = "v1", *, active: bool = True) -> int:
    with db.transaction(engine) as s:
        return crud.register_model(
            s, version=version, dataset="mnist", onnx_sha256="0" * 64, metrics={}, active=active
        )


def count(engine: Engine, table: type[object]) -> int:
    with db.transaction(engine) as s:
        return s.scalar(select(func.count()).select_from(table)) or 0


def test_one_image_round_trips_bit_for_bit(engine: Engine) -> None:
    image = (np.arange(784) % 256).astype(np.uint8).reshape(28, 28)  # every byte value
    model_id = new_model(engine)
    with db.transaction(engine) as s:
        input_id = crud.record_input(s, image=image, source="cli", label=3, original=b"\x00\xff")
        probs = some_probs(1)[0]
        pred_id = crud.record_prediction(
            s, input_id=input_id, model_id=model_id, probabilities=probs, latency_ms=1.5
        )
    with db.transaction(engine) as s:
        row = s.get_one(InputData, input_id)
        assert crud.image_from_bytes(row.image).tobytes() == image.tobytes()
        assert row.sha256 == hashlib.sha256(image.tobytes()).hexdigest()
        assert (row.original, row.source, row.label) == (b"\x00\xff", "cli", 3)
        pred = s.get_one(Prediction, pred_id)
        assert pred.input_id == input_id and pred.model_id == model_id
        assert pred.label == int(probs.argmax())
        assert np.array_equal(np.array(pred.probabilities, dtype=np.float32), probs)
        assert pred.created_at.tzinfo is not None


def test_a_batch_round_trips_bit_for_bit(engine: Engine) -> None:
    images = rng.integers(0, 256, (1500, 28, 28), dtype=np.uint8)
    probs = some_probs(1500)
    labels: list[int | None] = [i % 10 if i % 3 else None for i in range(1500)]
    model_id = new_model(engine)
    with db.transaction(engine) as s:
        stored = crud.record_batch(
            s,
            images=images,
            probabilities=probs,
            model_id=model_id,
            sources=[f"test/{i}" for i in range(1500)],
            labels=labels,
            latency_ms=0.25,
        )
    assert stored == 1500
    with db.transaction(engine) as s:
        rows = s.execute(
            select(InputData, Prediction)
            .join(Prediction, Prediction.input_id == InputData.id)
            .order_by(InputData.source)
        ).all()
    by_index = {int(i.source.split("/")[1]): (i, p) for i, p in rows}
    assert len(by_index) == 1500
    for k, (inp, pred) in by_index.items():
        assert inp.image == images[k].tobytes()
        assert inp.label == labels[k]
        assert pred.label == int(probs[k].argmax())
        assert np.array_equal(np.array(pred.probabilities, dtype=np.float32), probs[k])


def test_foreign_keys_are_enforced(engine: Engine) -> None:
    model_id = new_model(engine)
    with pytest.raises(db.StoreError, match="refused the write"), db.transaction(engine) as s:
        crud.record_prediction(
            s, input_id=123456, model_id=model_id, probabilities=some_probs(1)[0], latency_ms=1
        )
    image = np.zeros((28, 28), np.uint8)
    with pytest.raises(db.StoreError, match="refused the write"), db.transaction(engine) as s:
        input_id = crud.record_input(s, image=image, source="cli")
        crud.record_prediction(
            s, input_id=input_id, model_id=999, probabilities=some_probs(1)[0], latency_ms=1
        )
    assert count(engine, InputData) == 0  # the whole unit of work rolled back


def test_deleting_an_input_cascades_to_predictions_and_feedback(engine: Engine) -> None:
    model_id = new_model(engine)
    with db.transaction(engine) as s:
        ids = []
        for _ in range(2):
            input_id = crud.record_input(s, image=np.zeros((28, 28), np.uint8), source="cli")
            pred_id = crud.record_prediction(
                s, input_id=input_id, model_id=model_id, probabilities=some_probs(1)[0],
                latency_ms=1,
            )  # fmt: skip
            crud.record_feedback(s, prediction_id=pred_id, label=4, note="a four")
            ids.append(input_id)
    with db.transaction(engine) as s:
        s.execute(delete(InputData).where(InputData.id == ids[0]))
    assert (count(engine, InputData), count(engine, Prediction), count(engine, Feedback)) == (
        1,
        1,
        1,
    )
    with pytest.raises(db.StoreError, match="refused"), db.transaction(engine) as s:
        s.execute(delete(ModelRow))  # predictions still point at it


@pytest.mark.parametrize(
    "row",
    [
        {"image": bytes(784), "label": 10},
        {"image": bytes(784), "label": -1},
        {"image": bytes(783), "label": 1},
        {"image": bytes(784), "label": 1, "original": bytes(512 * 1024 + 1)},
    ],
)
def test_the_database_checks_labels_and_sizes(engine: Engine, row: dict[str, object]) -> None:
    with pytest.raises(db.StoreError, match="refused"), db.transaction(engine) as s:
        s.execute(insert(InputData).values(sha256="x", source="raw", **row))


def test_bad_input_is_refused_before_the_database(engine: Engine) -> None:
    with db.transaction(engine) as s:
        with pytest.raises(ValueError, match="28x28 uint8"):
            crud.record_input(s, image=np.zeros((28, 27), np.uint8), source="cli")
        with pytest.raises(ValueError, match="not a digit"):
            crud.record_input(s, image=np.zeros((28, 28), np.uint8), source="cli", label=12)
        big = bytes(600 * 1024)  # too large to keep: the 28x28 is stored without it
        input_id = crud.record_input(
            s, image=np.zeros((28, 28), np.uint8), source="upload", original=big
        )
        assert s.get_one(InputData, input_id).original is None


def test_registering_a_version_is_idempotent_and_one_is_active(engine: Engine) -> None:
    first = new_model(engine, "v1")
    assert new_model(engine, "v1") == first
    second = new_model(engine, "v2")
    third = new_model(engine, "v3", active=False)
    with db.transaction(engine) as s:
        active = s.scalars(select(ModelRow.id).where(ModelRow.is_active)).all()
        assert active == [second]
        assert s.scalar(select(func.count()).select_from(ModelRow)) == 3
    assert third not in active


def test_the_latest_feedback_is_the_truth(engine: Engine) -> None:
    model_id = new_model(engine)
    probs = np.zeros(10, np.float32)
    probs[7] = 1.0
    with db.transaction(engine) as s:
        input_id = crud.record_input(s, image=np.zeros((28, 28), np.uint8), source="canvas")
        pred_id = crud.record_prediction(
            s, input_id=input_id, model_id=model_id, probabilities=probs, latency_ms=1
        )
    with db.transaction(engine) as s:
        assert queries.recent_predictions(s, wrong=True) == []
        crud.record_feedback(s, prediction_id=pred_id, label=1)
    with db.transaction(engine) as s:
        assert [r.true_label for r in queries.recent_predictions(s, wrong=True)] == [1]
        crud.record_feedback(s, prediction_id=pred_id, label=7, note="it was a 7 after all")
    with db.transaction(engine) as s:
        assert queries.recent_predictions(s, wrong=True) == []
        (stats,) = queries.stats_by_model(s)
        assert (stats.count, stats.correct, stats.confusion[7][7]) == (1, 1, 1)
