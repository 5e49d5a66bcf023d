"""The service's write path on both backends (one statement on PostgreSQL, the ORM on
SQLite): each image's row and prediction land under the ids it is answered with, and a
refused group leaves nothing behind."""

from __future__ import annotations

import asyncio
import hashlib

import numpy as np
import pytest
from sqlalchemy import Engine, select

from digitlab.store import crud, db, writers
from digitlab.store.models import MAX_ORIGINAL_BYTES, InputData, Prediction
from tests.store.test_crud import count, new_model, some_probs

rng = np.random.default_rng(1)


def test_a_group_is_stored_under_the_ids_it_answers_with(engine: Engine) -> None:
    n = 37
    images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
    images[0] = (np.arange(784) % 256).reshape(28, 28)  # every byte value
    probs = some_probs(n)
    labels: list[int | None] = [k % 10 if k % 3 else None for k in range(n)]
    originals: list[bytes | None] = [bytes([k]) * (k + 1) if k % 2 else None for k in range(n)]
    originals[1] = b"x" * (MAX_ORIGINAL_BYTES + 1)  # too big to keep
    model_id = new_model(engine)

    async def write() -> list[tuple[int, int]]:
        writer = writers.writer_for(engine)
        try:
            group = crud.Group(
                images=images,
                probabilities=probs,
                model_id=model_id,
                sources=[f"test/{k}" for k in range(n)],
                labels=labels,
                latency_ms=0.5,
                originals=originals,
            )
            return await writer.record_predictions(group)
        finally:
            await writer.close()

    ids = asyncio.run(write())
    assert len(ids) == n and len({i for i, _ in ids}) == n
    with db.transaction(engine) as s:
        for k, (input_id, prediction_id) in enumerate(ids):
            row = s.get_one(InputData, input_id)
            assert row.image == images[k].tobytes()
            assert row.sha256 == hashlib.sha256(images[k].tobytes()).hexdigest()
            assert (row.source, row.label) == (f"test/{k}", labels[k])
            assert row.original == (None if k == 1 else originals[k])
            pred = s.get_one(Prediction, prediction_id)
            assert (pred.input_id, pred.model_id) == (input_id, model_id)
            assert pred.label == int(probs[k].argmax())
            assert pred.confidence == pytest.approx(float(probs[k].max()))
            assert np.array_equal(np.array(pred.probabilities, dtype=np.float32), probs[k])
            assert pred.latency_ms == 0.5


def test_a_refused_group_stores_nothing(engine: Engine) -> None:
    images = np.zeros((3, 28, 28), np.uint8)
    model_ids = new_model(engine), new_model(engine, "v2")

    def group(model_id: int, labels: list[int | None]) -> crud.Group:
        return crud.Group(images, some_probs(3), model_id, ["s"] * 3, labels, latency_ms=1.0)

    async def write() -> list[tuple[int, int]]:
        writer = writers.writer_for(engine)
        try:
            with pytest.raises(db.StoreError, match="refused the write"):
                await writer.record_predictions(group(999, [None, 1, 2]))
            with pytest.raises(ValueError, match="label 11"):
                await writer.record_predictions(group(model_ids[0], [None, 11, 2]))
            # The writer goes on after a refusal: the next group is stored.
            return await writer.record_predictions(group(model_ids[1], [None, 1, 2]))
        finally:
            await writer.close()

    ids = asyncio.run(write())
    assert count(engine, InputData) == count(engine, Prediction) == 3
    with db.transaction(engine) as s:
        stored = s.scalars(select(Prediction.id).order_by(Prediction.id)).all()
    assert stored == sorted(p for _, p in ids)
