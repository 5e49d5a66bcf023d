"""The monitor's SQL on SQLite and a real PostgreSQL: window counts by label and
confidence bin, trusted labels (the latest correction, a labeller's), and the count of
inputs waiting for review."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from digitlab.store import crud, db
from digitlab.store import monitor as store
from digitlab.store.models import Feedback, Prediction

NOW = datetime.now(UTC)


def add_prediction(
    session: Session, model_id: int, label: int, confidence: float, at: datetime = NOW
) -> int:
    input_id = crud.record_input(session, image=np.zeros((28, 28), np.uint8), source="test")
    row = Prediction(
        input_id=input_id,
        model_id=model_id,
        label=label,
        confidence=confidence,
        probabilities=[0.0] * 10,
        latency_ms=1.0,
        created_at=at,
    )
    session.add(row)
    session.flush()
    return row.id


def correct(session: Session, prediction_id: int, label: int, source: str) -> None:
    session.add(Feedback(prediction_id=prediction_id, label=label, source=source))
    session.flush()


def model(session: Session, version: str) -> int:
    return crud.register_model(
        session, version=version, dataset="mnist", onnx_sha256="0" * 64, metrics={}, active=False
    )


def test_window_counts_by_label_and_bin(engine: Engine) -> None:
    with db.transaction(engine) as session:
        a, b = model(session, "a"), model(session, "b")
        for label, confidence in [(3, 0.9999), (3, 0.42), (3, 0.999), (7, 0.97), (7, 0.5)]:
            add_prediction(session, a, label, confidence)
        add_prediction(session, a, 1, 0.99, at=NOW - timedelta(days=2))  # outside the day
        add_prediction(session, b, 2, 0.8)
    with db.transaction(engine) as session:
        found = store.window_counts(session, model_ids=[a, b], since=NOW - timedelta(days=1))
        week = store.window_counts(session, model_ids=[a], since=NOW - timedelta(weeks=1))
    assert found[a].requests == 5 and found[b].requests == 1 and week[a].requests == 6
    assert found[a].by_label[3] == 3 and found[a].by_label[7] == 2 and found[a].by_label[1] == 0
    top = store.BINS - 1
    assert found[a].counts[3][top] == 2 and found[a].counts[3][0] == 1
    assert found[a].counts[7][store.confidence_bin(0.97)] == 1
    assert found[a].counts[7][store.confidence_bin(0.5)] == 1 == store.confidence_bin(0.5)
    assert found[b].by_bin[store.confidence_bin(0.8)] == 1


def test_trusted_counts_take_the_latest_correction_only_when_a_labellers(engine: Engine) -> None:
    since = NOW - timedelta(hours=1)
    with db.transaction(engine) as session:
        a = model(session, "a")
        right = add_prediction(session, a, 4, 0.99)
        correct(session, right, 4, "labeller")  # a labeller confirms
        wrong = add_prediction(session, a, 4, 0.99)
        correct(session, wrong, 9, "anonymous")
        correct(session, wrong, 9, "labeller")  # a labeller takes the anonymous label
        overruled = add_prediction(session, a, 5, 0.99)
        correct(session, overruled, 5, "labeller")
        correct(session, overruled, 6, "anonymous")  # the latest is anonymous: untrusted
        anonymous = add_prediction(session, a, 1, 0.99)
        correct(session, anonymous, 2, "anonymous")
        old = add_prediction(session, a, 1, 0.99, at=NOW - timedelta(days=3))
        correct(session, old, 1, "labeller")  # outside the window
        add_prediction(session, a, 8, 0.6)  # never labelled
    with db.transaction(engine) as session:
        trusted = store.trusted_counts(session, model_ids=[a], since=since)[a]
        waiting = store.waiting_for_review(session)
    assert sum(trusted.labelled) == 2 and sum(trusted.correct) == 1
    assert trusted.labelled[4] == 1 and trusted.correct[4] == 1
    assert trusted.labelled[9] == 1 and trusted.correct[9] == 0
    # Six inputs; four carry a labeller's label (overruled's and old's too).
    assert waiting == 2


def test_one_row_and_no_rows(engine: Engine) -> None:
    with db.transaction(engine) as session:
        a = model(session, "a")
        empty = store.window_counts(session, model_ids=[a], since=NOW - timedelta(hours=1))
        assert empty[a].requests == 0 and store.waiting_for_review(session) == 0
        add_prediction(session, a, 0, 1.0)
        one = store.window_counts(session, model_ids=[a], since=NOW - timedelta(hours=1))
        assert one[a].counts[0][store.BINS - 1] == 1 and store.waiting_for_review(session) == 1
        assert store.model_ids(session, ["a", "missing"]) == {"a": a}
