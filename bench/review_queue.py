"""How long the review queue takes to answer on a large store (PostgreSQL):

    python bench/review_queue.py [--rows 200000] [--repeat 5]

Fills a throwaway PostgreSQL server with `--rows` stored predictions (random
probabilities, a tenth of the inputs corrected anonymously, a tenth by a labeller), then
times `review.queue(limit=20)` (exact margins, computed by the database) and
`review.count_waiting`, median of `--repeat`, beside the baseline of the same run: the
same waiting inputs ordered by confidence alone (no per-row margin).

Measured on the 2-core VM (shared, loaded), 200,000 rows: queue 494 ms, count 146 ms,
baseline 69 ms (the latest prediction per input found by an anti-join instead of a
GROUP BY over every prediction took the queue from 860 ms). What is left is mostly the
latest-anonymous join and the margin of every waiting row; a margin column written with
each prediction, indexed, would make the queue a short index scan.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import numpy as np
from sqlalchemy import Engine, select, text
from sqlalchemy.orm import Session

from digitlab.store import crud, db, review
from digitlab.store.models import InputData, Prediction
from digitlab.store.testing_pg import PostgresServer
from harness import fresh_database

CHUNK = 20_000


def fill(engine: Engine, rows: int) -> None:
    rng = np.random.default_rng(0)
    with db.transaction(engine) as s:
        model = crud.register_model(
            s, version="bench", dataset="mnist", onnx_sha256="0" * 64, metrics={}, active=True
        )
    for start in range(0, rows, CHUNK):
        n = min(CHUNK, rows - start)
        logits = rng.normal(size=(n, 10)).astype(np.float32) * 3
        probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
        images = rng.integers(0, 255, size=(n, 28, 28), dtype=np.uint8)
        with db.transaction(engine) as s:
            crud.record_batch(
                s, images=images, probabilities=probs.astype(np.float32), model_id=model,
                sources=["bench"] * n, labels=[None] * n, latency_ms=1.0,
            )  # fmt: skip
    with db.transaction(engine) as s:
        ids = s.scalars(select(Prediction.id).where(Prediction.id % 10 < 2)).all()
        for k, pid in enumerate(ids):
            source = review.LABELLER if k % 2 else review.ANONYMOUS
            crud.record_feedback(s, prediction_id=pid, label=int(pid % 10), source=source)


def median_ms(engine: Engine, run: Callable[..., object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        with db.transaction(engine) as s:
            started = time.perf_counter()
            run(s)
            times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def by_confidence(session: Session) -> object:
    return session.execute(
        select(Prediction.id)
        .join(InputData, InputData.id == Prediction.input_id)
        .where(review._waiting())
        .order_by(Prediction.confidence.asc())
        .limit(20)
    ).all()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with PostgresServer.start() as pg:
        engine = db.make_engine(fresh_database(pg, "review_bench"))
        started = time.perf_counter()
        fill(engine, args.rows)
        print(f"stored {args.rows} predictions in {time.perf_counter() - started:.1f} s")
        with db.transaction(engine) as s:
            s.execute(text("ANALYZE"))
        queue = median_ms(engine, lambda s: review.queue(s, limit=20), args.repeat)
        count = median_ms(engine, review.count_waiting, args.repeat)
        base = median_ms(engine, by_confidence, args.repeat)
        print(f"review queue (limit 20, exact margin): {queue:.0f} ms (median of {args.repeat})")
        print(f"count waiting:                         {count:.0f} ms")
        print(f"baseline, ordered by confidence only:  {base:.0f} ms (ratio {queue / base:.2f})")
        engine.dispose()


if __name__ == "__main__":
    main()
