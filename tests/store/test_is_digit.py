"""The not-a-digit verdict in the store, on SQLite and a real PostgreSQL: migration 0007
leaves older predictions unknown (NULL); every write path keeps the verdict; the monitor
counts refused answers apart from the digits; the review queue puts them after the
digits; the training export leaves out a refused picture unless a labeller gave it a
digit; bulk scoring reports how many it refused."""

from __future__ import annotations

import asyncio
import json
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
from sqlalchemy import Engine, select, text
from sqlalchemy.orm import Session

from digitlab.data import Split
from digitlab.feedback.export import export
from digitlab.inference.runtime import OnnxClassifier
from digitlab.registry.versions import CARD_FILE, resolve
from digitlab.scoring import bulk
from digitlab.store import crud, db, migrate, queries, review, writers
from digitlab.store import monitor as store
from digitlab.store.models import Prediction
from tests.store.test_crud import new_model, some_probs
from tests.store.test_review_queue import probs

NOW = datetime.now(UTC)
# A probabilities column as each backend stores it: float4[] or a JSON list.
PG_PROBS, SQLITE_PROBS = "{0.1,0,0,0.9,0,0,0,0,0,0}", "[0.1,0,0,0.9,0,0,0,0,0,0]"


def verdicts_of(engine: Engine, prediction_ids: list[int]) -> list[bool | None]:
    query = select(Prediction.id, Prediction.is_digit).where(Prediction.id.in_(prediction_ids))
    with db.transaction(engine) as s:
        found = {int(i): v for i, v in s.execute(query).all()}
    return [found[p] for p in prediction_ids]


def test_migration_0007_keeps_older_predictions_unknown(db_url: str) -> None:
    engine = db.make_engine(db_url)
    migrate.upgrade(engine, "0006")
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO models (version, dataset, onnx_sha256, metrics)"
                " VALUES ('old', 'mnist', :sha, '{}')"
            ),
            {"sha": "0" * 64},
        )
        conn.execute(
            text("INSERT INTO input_data (image, sha256, source) VALUES (:image, :sha, 'old')"),
            {"image": bytes(784), "sha": "1" * 64},
        )
        conn.execute(
            text(
                "INSERT INTO predictions (input_id, model_id, label, confidence, probabilities,"
                " latency_ms) SELECT i.id, m.id, 3, 0.9, :probs, 1.0"
                " FROM input_data i, models m"
            ),
            {"probs": PG_PROBS if db_url.startswith("postgresql") else SQLITE_PROBS},
        )
    migrate.upgrade(engine)
    with db.transaction(engine) as s:
        old = s.scalars(select(Prediction)).one()
        assert old.is_digit is None  # unknown, not guessed
        record = queries.get_prediction(s, prediction_id=old.id)
        assert record is not None and record.is_digit is None
    migrate.downgrade(engine, "0006")
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM predictions")).scalar_one() == 1
    engine.dispose()


def test_every_write_path_keeps_the_verdict(engine: Engine, mnist_test: Split) -> None:
    n = 6
    images = mnist_test.images[:n]
    verdicts = [True, False, True, False, False, True]
    model_id = new_model(engine)

    async def service_write() -> list[tuple[int, int]]:
        writer = writers.writer_for(engine)  # one statement on PostgreSQL
        try:
            group = crud.Group(
                images=images,
                probabilities=some_probs(n),
                model_id=model_id,
                sources=["test"] * n,
                labels=[None] * n,
                latency_ms=0.5,
                is_digit=verdicts,
            )
            return await writer.record_predictions(group)
        finally:
            await writer.close()

    ids = asyncio.run(service_write())
    assert verdicts_of(engine, [p for _, p in ids]) == verdicts

    with db.transaction(engine) as s:
        input_id = crud.record_input(s, image=images[0], source="one")
        one = crud.record_prediction(
            s,
            input_id=input_id,
            model_id=model_id,
            probabilities=some_probs(1)[0],
            latency_ms=1,
            is_digit=False,
        )
        # COPY on PostgreSQL, multi-row INSERTs on SQLite.
        crud.record_batch(
            s,
            images=images,
            probabilities=some_probs(n),
            model_id=model_id,
            sources=["bulk"] * n,
            labels=[None] * n,
            latency_ms=0.1,
            is_digit=verdicts[::-1],
        )
    with db.transaction(engine) as s:
        bulk_rows = s.scalars(
            select(Prediction.is_digit).where(Prediction.id > one).order_by(Prediction.id)
        ).all()
    assert verdicts_of(engine, [one]) == [False]
    assert list(bulk_rows) == verdicts[::-1]


def add(s: Session, model_id: int, label: int, confidence: float, is_digit: bool | None) -> int:
    input_id = crud.record_input(s, image=np.zeros((28, 28), np.uint8), source="test")
    row = Prediction(
        input_id=input_id,
        model_id=model_id,
        label=label,
        confidence=confidence,
        probabilities=[0.0] * 10,
        latency_ms=1.0,
        created_at=NOW,
        is_digit=is_digit,
    )
    s.add(row)
    s.flush()
    return row.id


def test_the_monitor_counts_refused_answers_apart(engine: Engine) -> None:
    with db.transaction(engine) as s:
        a = crud.register_model(
            s, version="a", dataset="mnist", onnx_sha256="0" * 64, metrics={}, active=False
        )
        for label, confidence, verdict in [
            (3, 0.99, True), (3, 0.42, False), (4, 0.3, False), (7, 0.97, None), (1, 0.6, True),
        ]:  # fmt: skip
            add(s, a, label, confidence, verdict)
    with db.transaction(engine) as s:
        found = store.window_counts(s, model_ids=[a], since=NOW - timedelta(hours=1))[a]
    assert found.requests == 5 and found.refused == 2 and found.digits == 3
    assert found.judged == 4 and found.refused_share == 0.5
    # The class mix and the confidence bins are of the digit answers only.
    assert found.by_label[3] == 1 and found.by_label[4] == 0 and found.by_label[7] == 1
    assert sum(found.by_bin) == 3 and found.by_bin[0] == 0  # the two < 0.5 were refused


def test_the_review_queue_puts_refused_answers_after_the_digits(
    engine: Engine, mnist_test: Split
) -> None:
    with db.transaction(engine) as s:
        model = crud.register_model(
            s, version="v1", dataset="mnist", onnx_sha256="0" * 64, metrics={}, active=False
        )

        def predicted(k: int, p: float, is_digit: bool | None) -> int:
            input_id = crud.record_input(s, image=mnist_test.images[k], source="test")
            crud.record_prediction(
                s,
                input_id=input_id,
                model_id=model,
                probabilities=probs(k % 10, p),
                latency_ms=1,
                is_digit=is_digit,
            )
            return input_id

        doodle = predicted(0, 0.2, False)  # the smallest margin of all, but not a digit
        unsure = predicted(1, 0.5, True)
        sure = predicted(2, 0.95, True)
        old = predicted(3, 0.7, None)  # stored before the verdict: with the digits
        claimed = predicted(4, 0.3, False)
    with db.transaction(engine) as s:
        order = [i.input_id for i in review.queue(s, limit=10)]
        assert order == [unsure, old, sure, doodle, claimed]
        first = review.queue(s, limit=1)[0]
        assert first.is_digit is True
        # Someone says the refused picture was a 9: worth a labeller's look first.
        claimed_prediction = review.queue(s, limit=10)[-1].prediction_id
        crud.record_feedback(s, prediction_id=claimed_prediction, label=9, source="anonymous")
    with db.transaction(engine) as s:
        assert [i.input_id for i in review.queue(s, limit=2)] == [claimed, unsure]


def test_the_export_leaves_out_refused_pictures_unless_a_labeller_gave_a_digit(
    engine: Engine, mnist_test: Split, tmp_path: Path
) -> None:
    with db.transaction(engine) as s:
        model = crud.register_model(
            s, version="v1", dataset="mnist", onnx_sha256="0" * 64, metrics={}, active=False
        )
        made = []
        for k, is_digit in enumerate([False, False, True, None]):
            input_id = crud.record_input(s, image=mnist_test.images[k], source="test")
            prediction_id = crud.record_prediction(
                s,
                input_id=input_id,
                model_id=model,
                probabilities=probs(1, 0.9),
                latency_ms=1,
                is_digit=is_digit,
            )
            made.append((input_id, prediction_id))
        # 0: refused, a labeller says 5; 1: refused, only anonymous says 6;
        # 2: a digit, anonymous says 7; 3: stored before the verdict, anonymous says 8.
        crud.record_feedback(s, prediction_id=made[0][1], label=5, source="labeller")
        for (_, prediction_id), label in zip(made[1:], (6, 7, 8), strict=True):
            crud.record_feedback(s, prediction_id=prediction_id, label=label, source="anonymous")
    everyone = export(engine, tmp_path / "everyone", include_anonymous=True)
    items = {i["input_id"]: i["label"] for i in everyone.manifest["items"]}
    assert items == {made[0][0]: 5, made[2][0]: 7, made[3][0]: 8}
    assert everyone.not_digit_left_out == 1
    assert everyone.manifest["not_digit_left_out"] == 1
    labellers = export(engine, tmp_path / "labellers")
    assert [i["input_id"] for i in labellers.manifest["items"]] == [made[0][0]]
    assert labellers.not_digit_left_out == 0


def with_threshold(model_dir: Path, folder: Path, threshold: float) -> OnnxClassifier:
    """The model of `model_dir` with `verdict.threshold` set in its card, as a model
    calibrated to refuse more would carry it."""
    shutil.copytree(model_dir, folder)
    card_path = resolve(folder).path / CARD_FILE
    card = json.loads(card_path.read_text())
    card["verdict"] = {"threshold": threshold}
    card_path.write_text(json.dumps(card))
    return OnnxClassifier(resolve(folder), threads=1)


def test_bulk_scoring_stores_and_counts_the_verdicts(
    engine: Engine, model_dir: Path, mnist_test: Split, tmp_path: Path
) -> None:
    # The tiny linear test model answers blank paper and noise with certainty, so its
    # card's threshold is what makes it refuse here: the digits it is least sure of.
    classifier = with_threshold(model_dir, tmp_path / "models", 0.999)
    rng = np.random.default_rng(5)
    others = np.stack(
        [np.zeros((28, 28), np.uint8), rng.integers(0, 256, (28, 28), dtype=np.uint8)]
    )
    images = np.concatenate([mnist_test.images[:20], others])
    probabilities, expected = bulk.judge(classifier, images)
    assert probabilities.shape == (22, 10)
    assert expected.tolist() == (probabilities.max(axis=1) >= 0.999).tolist()
    assert 0 < int((~expected).sum()) < 22
    with db.transaction(engine) as s:
        model_id = crud.register_model(
            s, version="linear", dataset="mnist", onnx_sha256="0" * 64, metrics={}, active=False
        )
    result = bulk.score(
        engine, classifier, model_id, images, sources=["test"] * 22, labels=[None] * 22
    )
    assert result.refused == int((~expected).sum())
    with db.transaction(engine) as s:
        stored = s.scalars(select(Prediction.is_digit).order_by(Prediction.id)).all()
    assert list(stored) == expected.tolist()
