"""Bulk-scoring benchmark: the 10,000 MNIST test images predicted and stored in a
throwaway PostgreSQL server (fsync on, as a deployment runs it), beside the reference
application's way of storing rows (one ORM INSERT + commit per image and prediction).

    python bench/score.py                  # the current model; 3 runs, medians
    python bench/score.py --baseline 2000  # images for the naive baseline (extrapolated)

Needs a trained model (`digitlab train`) and the MNIST files (DIGITLAB_DATA_DIR).
Each run gets a fresh database, so every run writes into empty tables.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from digitlab.config import get_settings
from digitlab.data import load_split
from digitlab.inference.runtime import OnnxClassifier
from digitlab.registry import versions as registry
from digitlab.registry.publish import ensure_model
from digitlab.scoring.bulk import score
from digitlab.store import crud, db, migrate
from digitlab.store.models import InputData, Prediction
from digitlab.store.testing_pg import PostgresServer


def fresh_engine(server: PostgresServer, name: str) -> Engine:
    engine = db.make_engine(server.create_database(name))
    migrate.upgrade(engine)
    return engine


def in_process(engine: Engine, model: registry.ModelVersion) -> float:
    """What `digitlab score --dataset mnist --split test` does after start-up:
    load and verify the split, load the model, predict, store in one transaction."""
    start = time.perf_counter()
    test = load_split("mnist", "test", get_settings(), download=False)
    classifier = OnnxClassifier(model)
    model_id = ensure_model(engine, model, active=True)
    result = score(
        engine,
        classifier,
        model_id,
        test.images,
        sources=[f"dataset:mnist/test/{i}" for i in range(len(test.labels))],
        labels=[int(y) for y in test.labels],
    )
    assert result.stored == len(test.labels)
    return time.perf_counter() - start


def whole_command(engine: Engine) -> float:
    """The command as a user runs it, interpreter start-up included."""
    env = os.environ | {"DIGITLAB_DATABASE_URL": engine.url.render_as_string(False)}
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "digitlab", "score", "--dataset", "mnist", "--split", "test"],
        env=env,
        check=True,
        capture_output=True,
    )
    return time.perf_counter() - start


def naive(engine: Engine, model: registry.ModelVersion, count: int) -> float:
    """The reference application's loop: per image, INSERT the image and commit, read it
    back, predict it alone, INSERT the prediction and commit."""
    test = load_split("mnist", "test", get_settings(), download=False)
    classifier = OnnxClassifier(model)
    model_id = ensure_model(engine, model, active=True)
    start = time.perf_counter()
    for i in range(count):
        with Session(engine) as session:
            row = InputData(
                image=crud.image_bytes(test.images[i]),
                sha256="",
                source=f"dataset:mnist/test/{i}",
                label=int(test.labels[i]),
            )
            session.add(row)
            session.commit()
            image = crud.image_from_bytes(session.get_one(InputData, row.id).image)
            t = time.perf_counter()
            probs = classifier.probabilities(image[None])[0]
            session.add(
                Prediction(
                    input_id=row.id,
                    model_id=model_id,
                    label=int(probs.argmax()),
                    confidence=float(probs.max()),
                    probabilities=[float(p) for p in probs],
                    latency_ms=(time.perf_counter() - t) * 1000,
                )
            )
            session.commit()
    return time.perf_counter() - start


def median_of(runs: int, fn: Callable[[int], float]) -> tuple[float, list[float]]:
    times = [fn(i) for i in range(runs)]
    return statistics.median(times), times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--baseline", type=int, default=1000, help="images, extrapolated")
    args = parser.parse_args()
    model = registry.resolve(get_settings().model_dir)
    n = 10_000
    print(f"model {model.version}; {platform.python_version()}, {os.cpu_count()} CPUs")

    with PostgresServer.start(durable=True) as server:
        fast, fast_runs = median_of(
            args.runs, lambda i: in_process(fresh_engine(server, f"fast{i}"), model)
        )
        cli, cli_runs = median_of(
            args.runs, lambda i: whole_command(fresh_engine(server, f"cli{i}"))
        )
        slow = naive(fresh_engine(server, "naive"), model, args.baseline) * n / args.baseline

    def fmt(runs: list[float]) -> str:
        return ", ".join(f"{t:.2f}" for t in runs)

    print("| how | 10,000 images | rows/s |")
    print("|---|---|---|")
    print(f"| score, in process (runs: {fmt(fast_runs)}) | {fast:.2f} s | {n / fast:,.0f} |")
    print(f"| `digitlab score` command (runs: {fmt(cli_runs)}) | {cli:.2f} s | {n / cli:,.0f} |")
    print(
        f"| naive: ORM INSERT + commit per row ({args.baseline} images, extrapolated) "
        f"| {slow:.1f} s | {n / slow:,.0f} |"
    )
    print(f"speed-up over the naive way: {slow / fast:.0f}x (in process)")


if __name__ == "__main__":
    main()
