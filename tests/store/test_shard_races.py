"""One shard run twice at the same time, and a shard that fails half-way, on both
backends: the shard's rows and its marker commit together or not at all, and a shard is
stored once however many processes run it."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable

import psycopg
import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.engine import make_url

from digitlab.config import Settings
from digitlab.data import Split
from digitlab.inference.runtime import OnnxClassifier
from digitlab.registry.publish import ensure_model
from digitlab.scoring.bulk import ScoreResult, StoredBefore, score_shard
from digitlab.scoring.sharding import Shard
from digitlab.store import db
from digitlab.store.models import InputData, Prediction, ScoreShard
from tests.store.test_robustness import digitlab

N = 2500  # three chunks of scoring.CHUNK


def count_rows(engine: Engine) -> tuple[int, int, int]:
    with db.transaction(engine) as s:
        return tuple(  # type: ignore[return-value]
            s.scalar(select(func.count()).select_from(table)) or 0
            for table in (InputData, Prediction, ScoreShard)
        )


def run_shard(
    engine: Engine,
    classifier: OnnxClassifier,
    model_id: int,
    test: Split,
    *,
    labels: list[int | None] | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> ScoreResult | StoredBefore:
    """Shard 1/2 of the first 2N test images: N of them, sources numbered N..2N-1."""
    block = Shard(1, 2).block(2 * N)
    lo, hi = block.start, block.stop
    return score_shard(
        engine, classifier, model_id, test.images[lo:hi], job="race", shard=Shard(1, 2),
        sources=[f"dataset:mnist/test/{i}" for i in block],
        labels=labels if labels is not None else [int(y) for y in test.labels[lo:hi]],
        on_progress=on_progress,
    )  # fmt: skip


def test_a_failure_half_way_leaves_neither_rows_nor_marker(
    engine: Engine, classifier: OnnxClassifier, mnist_test: Split
) -> None:
    model_id = ensure_model(engine, classifier.model, active=True)
    labels: list[int | None] = [int(y) for y in mnist_test.labels[N : 2 * N]]
    labels[2200] = 11  # refused in the third chunk, after two chunks and the marker
    progress: list[int] = []
    with pytest.raises(ValueError, match="label 11"):
        run_shard(
            engine, classifier, model_id, mnist_test, labels=labels, on_progress=progress.append
        )
    assert progress == [1000, 1000]
    assert count_rows(engine) == (0, 0, 0)

    retried = run_shard(engine, classifier, model_id, mnist_test)  # nothing left in the way
    assert isinstance(retried, ScoreResult) and retried.stored == N
    assert count_rows(engine) == (N, N, 1)


def blocked_on_a_lock(engine: Engine, timeout: float = 30) -> bool:
    """Until a second digitlab session waits on a lock the first one holds (PostgreSQL)."""
    url = make_url(engine.url.render_as_string(hide_password=False))
    dsn = f"host={url.host} port={url.port} user={url.username} dbname={url.database}"
    deadline = time.monotonic() + timeout
    with psycopg.connect(dsn, autocommit=True) as conn:
        while time.monotonic() < deadline:
            waiting = conn.execute(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE application_name = 'digitlab' AND wait_event_type = 'Lock'"
            ).fetchone()
            if waiting and waiting[0]:
                return True
            time.sleep(0.01)
    return False


@pytest.mark.parametrize("first_ends", ["commits", "fails"])
def test_a_second_run_of_a_shard_in_progress_waits_and_stores_it_at_most_once(
    db_url: str, engine: Engine, classifier: OnnxClassifier, mnist_test: Split, first_ends: str
) -> None:
    model_id = ensure_model(engine, classifier.model, active=True)
    other_engine = db.make_engine(db_url)  # another process, as far as the database knows
    wrote, release = threading.Event(), threading.Event()
    results: dict[str, ScoreResult | StoredBefore | BaseException] = {}

    def hold_after_first_chunk(n: int) -> None:
        wrote.set()
        assert release.wait(60)
        if first_ends == "fails":
            raise RuntimeError("injected: the first run dies after its first chunk")

    def run(name: str, target: Engine, hook: Callable[[int], None] | None) -> None:
        try:
            results[name] = run_shard(target, classifier, model_id, mnist_test, on_progress=hook)
        except BaseException as exc:  # kept for the assertions below
            results[name] = exc

    first = threading.Thread(target=run, args=("first", engine, hold_after_first_chunk))
    first.start()
    assert wrote.wait(60), "the first run never wrote"
    second_progress: list[int] = []
    second = threading.Thread(target=run, args=("second", other_engine, second_progress.append))
    second.start()
    if engine.dialect.name == "postgresql":  # past its check, waiting on the marker's index
        assert blocked_on_a_lock(engine), "the second run did not wait for the first"
    else:  # SQLite: waiting for the write lock that BEGIN IMMEDIATE takes
        time.sleep(0.5)
    assert second.is_alive(), results.get("second")
    assert second_progress == [], "the second run scored before it knew the shard was taken"
    release.set()
    first.join(60)
    second.join(60)
    other_engine.dispose()

    if first_ends == "commits":
        assert isinstance(results["first"], ScoreResult) and results["first"].stored == N
        assert isinstance(results["second"], StoredBefore) and results["second"].images == N
    else:  # the second one takes over once the first has rolled back
        assert isinstance(results["first"], RuntimeError)
        assert isinstance(results["second"], ScoreResult) and results["second"].stored == N
    assert count_rows(engine) == (N, N, 1)


def test_two_processes_running_the_same_shard_store_it_once(cli_env: Settings) -> None:
    args = ("score", "--dataset", "mnist", "--limit", "6000", "--shard", "0/2")
    runs = [digitlab(cli_env, *args) for _ in range(2)]
    outputs = []
    for run in runs:
        out, _ = run.communicate(timeout=120)
        assert run.returncode == 0, out
        outputs.append(out)
    stored = [o for o in outputs if re.search(r"stored 3000 predictions", o)]
    skipped = [o for o in outputs if "already stored (3000 images" in o]
    assert len(stored) == 1 and len(skipped) == 1, outputs
    engine = db.make_engine(cli_env.database_url)
    assert count_rows(engine) == (3000, 3000, 1)
    with db.transaction(engine) as s:
        sources = s.scalars(select(InputData.source)).all()
    engine.dispose()
    assert sorted(sources) == sorted(f"dataset:mnist/test/{i}" for i in range(3000))
