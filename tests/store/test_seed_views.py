"""Issue 29, part B: migration 0008 gives PostgreSQL a `seed` schema of read-only views
with the reference project's column names, so that its documented queries run unchanged
after `SET search_path = seed, public`; on SQLite it does nothing."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError

from digitlab.store import crud, db, migrate, review
from digitlab.store.testing_pg import PostgresServer

# The reference project's documented queries, as it prints them.
REFERENCE_QUERIES = {
    "sevens": "SELECT * FROM input_data WHERE true_label = 7",
    "joined": """
        SELECT i.id, i.true_label, p.predicted_label, p.confidence
        FROM predictions p JOIN input_data i ON p.input_data_id = i.id
        ORDER BY p.created_at DESC
    """,
    "accuracy": """
        SELECT COUNT(*) AS total,
               SUM(CASE WHEN p.predicted_label = i.true_label THEN 1 ELSE 0 END) AS correct
        FROM predictions p JOIN input_data i ON p.input_data_id = i.id
        WHERE i.true_label IS NOT NULL
    """,
    "low confidence": "SELECT * FROM predictions WHERE confidence < 0.5",
}


def probabilities(label: int) -> np.ndarray:
    probs = np.full((1, 10), 0.01, np.float32)
    probs[0, label] = 0.91
    return probs


def fill(engine: Engine) -> list[tuple[int, int]]:
    """Three inputs: one stored with label 7 and predicted 7, one predicted 3 that a
    labeller says is 7 (after an anonymous 1), one predicted 2 with only anonymous feedback."""
    image = np.zeros((1, 28, 28), np.uint8)
    with db.transaction(engine) as s:
        model_id = crud.register_model(
            s, version="v-seed", dataset="mnist", onnx_sha256="0" * 64, metrics={}, active=True
        )
        ids = []
        for given, predicted in ((7, 7), (None, 3), (None, 2)):
            ids += crud.record_predictions(
                s,
                images=image,
                probabilities=probabilities(predicted),
                model_id=model_id,
                sources=["test"],
                labels=[given],
                latency_ms=1.0,
                originals=[b"\x89PNG as sent" if given else None],
            )
        review.record_correction(s, prediction_id=ids[1][1], label=1, source=review.ANONYMOUS)
        review.record_correction(s, prediction_id=ids[1][1], label=7, source=review.LABELLER)
        review.record_correction(s, prediction_id=ids[2][1], label=5, source=review.ANONYMOUS)
    return ids


def test_reference_queries_run_under_the_seed_schema(pg_server: PostgresServer) -> None:
    engine = db.make_engine(pg_server.create_database("seed_views"))
    try:
        migrate.upgrade(engine)
        ids = fill(engine)
        with engine.connect() as conn:
            conn.execute(text("SET search_path = seed, public"))
            found = {
                n: conn.execute(text(q)).mappings().all() for n, q in REFERENCE_QUERIES.items()
            }
            first = conn.execute(text("SELECT * FROM input_data ORDER BY id")).mappings().first()
        sevens = found["sevens"]
        # The stored label, and the labeller's (not the later-given anonymous ones).
        assert [r["id"] for r in sevens] == [ids[0][0], ids[1][0]]
        assert set(sevens[0]) >= {"id", "image", "true_label", "created_at", "timestamp"}
        assert bytes(sevens[0]["image"]) == b"\x89PNG as sent"  # the upload as sent
        assert first is not None and len(bytes(first["pixels"])) == 784
        joined = {r["id"]: r for r in found["joined"]}
        assert joined[ids[1][0]]["predicted_label"] == 3 and joined[ids[1][0]]["true_label"] == 7
        assert joined[ids[2][0]]["true_label"] is None  # only an anonymous correction
        assert abs(joined[ids[0][0]]["confidence"] - 0.91) < 1e-6
        assert dict(found["accuracy"][0]) == {"total": 2, "correct": 1}
        assert found["low confidence"] == []
    finally:
        engine.dispose()


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE seed.input_data SET true_label = 1",
        "DELETE FROM seed.predictions",
        "INSERT INTO seed.predictions (id) VALUES (1)",
    ],
)
def test_the_views_are_read_only(pg_server: PostgresServer, statement: str) -> None:
    engine = db.make_engine(pg_server.create_database(f"seed_ro_{abs(hash(statement)) % 10**8}"))
    try:
        migrate.upgrade(engine)
        fill(engine)
        refused = r"cannot (update|delete from|insert into) view"
        with pytest.raises(DBAPIError, match=refused), engine.begin() as conn:
            conn.execute(text(statement))
    finally:
        engine.dispose()


def test_downgrade_drops_the_schema_and_sqlite_has_none(
    pg_server: PostgresServer, tmp_path: Path
) -> None:
    engine = db.make_engine(pg_server.create_database("seed_down"))
    schemas = "SELECT count(*) FROM information_schema.schemata WHERE schema_name = 'seed'"
    try:
        migrate.upgrade(engine)
        with engine.connect() as conn:
            assert conn.scalar(text(schemas)) == 1
        migrate.downgrade(engine, "0007")
        with engine.connect() as conn:
            assert conn.scalar(text(schemas)) == 0
        migrate.upgrade(engine)
    finally:
        engine.dispose()
    lite = db.make_engine(f"sqlite:///{tmp_path / 'lite.db'}")
    try:
        migrate.upgrade(lite)  # no-op there, and no error
        assert migrate.current_revision(lite) == migrate.head_revision()
    finally:
        lite.dispose()
