"""Whose corrections an export holds, on both backends: labellers' only by default; with
`include_anonymous` also anonymous ones, but never over a labeller's label of the same
input, however much newer; and the left-out anonymous corrections are counted."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from sqlalchemy import Engine

from digitlab.data import Split
from digitlab.feedback.export import export
from digitlab.store import crud, db


def test_labellers_win_and_anonymous_corrections_need_asking(
    engine: Engine, mnist_test: Split, tmp_path: Path
) -> None:
    probs = np.full(10, 0.1, dtype=np.float32)
    with db.transaction(engine) as s:
        model = crud.register_model(
            s, version="v1", dataset="mnist", onnx_sha256="0" * 64, metrics={}, active=False
        )
        predictions = []
        for k in range(3):
            input_id = crud.record_input(s, image=mnist_test.images[k], source="test")
            predictions.append(
                crud.record_prediction(
                    s, input_id=input_id, model_id=model, probabilities=probs, latency_ms=1.0
                )
            )
        a, b, c = predictions
        trusted = crud.record_feedback(s, prediction_id=a, label=1, source="labeller")
        crud.record_feedback(s, prediction_id=a, label=2)  # newer, anonymous: loses
        anonymous = crud.record_feedback(s, prediction_id=b, label=3)
        crud.record_feedback(s, prediction_id=c, label=4)
        latest_c = crud.record_feedback(s, prediction_id=c, label=5)

    default = export(engine, tmp_path / "default")
    assert default.feedback_ids == [trusted]
    assert default.anonymous == {"included": 0, "left_out": 2}
    assert [i["source"] for i in default.manifest["items"]] == ["labeller"]

    everyone = export(engine, tmp_path / "everyone", include_anonymous=True)
    assert everyone.feedback_ids == [trusted, anonymous, latest_c]
    assert everyone.anonymous == {"included": 2, "left_out": 0}
    labels = {i["feedback_id"]: i["label"] for i in everyone.manifest["items"]}
    assert labels == {trusted: 1, anonymous: 3, latest_c: 5}
    assert everyone.manifest["filters"]["include_anonymous"] is True
