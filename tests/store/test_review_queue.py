"""The review queue's store queries on both backends: one row per input (its latest
prediction), inputs with a trusted label left out, and the count of those waiting."""

from __future__ import annotations

import numpy as np
from sqlalchemy import Engine

from digitlab.data import Split
from digitlab.store import crud, db, review


def probs(best: int, p: float) -> np.ndarray:
    out = np.full(10, (1 - p) / 9, dtype=np.float32)
    out[best] = p
    return out


def test_one_row_per_input_from_its_latest_prediction(engine: Engine, mnist_test: Split) -> None:
    with db.transaction(engine) as s:
        model = crud.register_model(
            s, version="v1", dataset="mnist", onnx_sha256="0" * 64, metrics={}, active=False
        )
        twice = crud.record_input(s, image=mnist_test.images[0], source="test")
        crud.record_prediction(
            s, input_id=twice, model_id=model, probabilities=probs(3, 0.3), latency_ms=1
        )
        newest = crud.record_prediction(
            s, input_id=twice, model_id=model, probabilities=probs(5, 0.9), latency_ms=1
        )
        other = crud.record_input(s, image=mnist_test.images[1], source="test")
        other_pred = crud.record_prediction(
            s, input_id=other, model_id=model, probabilities=probs(1, 0.6), latency_ms=1
        )
        given = crud.record_input(s, image=mnist_test.images[2], source="test", label=7)
        crud.record_prediction(
            s, input_id=given, model_id=model, probabilities=probs(7, 0.2), latency_ms=1
        )
    with db.transaction(engine) as s:
        items = review.queue(s, limit=10)
        assert [(i.input_id, i.prediction_id) for i in items] == [
            (other, other_pred),  # margin 0.6 - 0.044 beats 0.9 - 0.011
            (twice, newest),
        ]
        assert items[1].top3[0][0] == 5 and items[1].predicted == 5
        assert review.count_waiting(s) == 2
        crud.record_feedback(s, prediction_id=other_pred, label=1, source="labeller")
    with db.transaction(engine) as s:
        assert [i.input_id for i in review.queue(s, limit=10)] == [twice]
        assert review.count_waiting(s) == 1
