"""Sharded bulk-scoring benchmark: `digitlab score --shard K/N` as real processes on a
throwaway PostgreSQL server (fsync on, as deployed), one process (N=1, the baseline)
beside two at once (N=2, `--shard 0/2` and `--shard 1/2`), on the 10,000 MNIST test
images and the 60,000 training images.

    python bench/score_shards.py                    # trains a `fast` model (1 epoch) first
    python bench/score_shards.py --model-dir DIR    # score with DIR's current version
    python bench/score_shards.py --runs 3 --json figures.json

Every run gets a fresh database with the model registered, and is checked afterwards:
as many stored rows as images, no source stored twice, one marker per shard. The
configurations are interleaved (run 1 of each, then run 2 of each, ...) so a change in
the machine's load falls on all of them; the load average is printed with each figure.
Needs the MNIST files (DIGITLAB_DATA_DIR).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from sqlalchemy import text

from digitlab.registry import versions as registry
from digitlab.registry.publish import ensure_model
from digitlab.store import db, migrate
from digitlab.store.testing_pg import PostgresServer

SPLITS = {"test": 10_000, "train": 60_000}
STORED = re.compile(r"stored \d+ predictions of model \S+ in ([\d.]+) s")


@dataclass(frozen=True)
class Figure:
    split: str
    images: int
    processes: int
    run: int
    seconds: float  # from starting the processes until the last one ended
    scoring: list[float]  # each process's own "stored ... in X s": predict and store
    load: tuple[float, float, float]  # os.getloadavg() as the run ended

    @property
    def rate(self) -> float:
        return self.images / self.seconds


def train_model(root: Path) -> Path:
    """A `fast` model of one epoch: scoring costs the same whatever its weights."""
    env = os.environ | {
        "DIGITLAB_MODEL_DIR": str(root / "models"),
        "DIGITLAB_REPORT_DIR": str(root / "reports"),
        "DIGITLAB_DATABASE_URL": f"sqlite:///{root / 'train.db'}",
    }
    command = [sys.executable, "-m", "digitlab", "train", "--recipe", "fast", "--epochs", "1"]
    subprocess.run(command, env=env, check=True, stdout=subprocess.DEVNULL)
    return root / "models"


def fresh_database(server: PostgresServer, name: str, model: registry.ModelVersion) -> str:
    """A new database at the current schema with the model registered, as a deployment
    has it after `digitlab db upgrade` and `digitlab train`."""
    url = server.create_database(name)
    engine = db.make_engine(url)
    migrate.upgrade(engine)
    ensure_model(engine, model, active=True)
    engine.dispose()
    return url


def score_processes(
    url: str, model_dir: Path, split: str, processes: int
) -> tuple[float, list[float]]:
    """Start `processes` shards of the split at once: seconds until the last one ends,
    and the seconds each spent predicting and storing (the rest is start-up, loading and
    verifying the split, loading the model)."""
    env = os.environ | {"DIGITLAB_DATABASE_URL": url, "DIGITLAB_MODEL_DIR": str(model_dir)}
    base = [sys.executable, "-m", "digitlab", "score", "--dataset", "mnist", "--split", split]
    start = time.perf_counter()
    runs = [
        subprocess.Popen(
            [*base, "--shard", f"{k}/{processes}"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for k in range(processes)
    ]
    outputs = [run.communicate()[0] for run in runs]
    seconds = time.perf_counter() - start
    scoring = []
    for run, out in zip(runs, outputs, strict=True):
        match = STORED.search(out)
        if run.returncode != 0 or match is None:
            raise SystemExit(f"digitlab score failed ({run.returncode}):\n{out}")
        scoring.append(float(match.group(1)))
    return seconds, scoring


def check_stored(url: str, images: int, processes: int) -> None:
    """Every image stored once with its prediction, and one marker per shard."""
    engine = db.make_engine(url)
    with engine.connect() as conn:
        inputs, distinct = conn.execute(
            text("SELECT count(*), count(DISTINCT source) FROM input_data")
        ).one()
        predictions = conn.execute(text("SELECT count(*) FROM predictions")).scalar_one()
        shards = conn.execute(text("SELECT count(*), sum(images) FROM score_shards")).one()
    engine.dispose()
    found = (inputs, distinct, predictions, shards[0], shards[1])
    if found != (images, images, images, processes, images):
        raise SystemExit(f"expected {images} images once each and {processes} shards: {found}")


def measure(
    server: PostgresServer, model: registry.ModelVersion, model_dir: Path,
    split: str, processes: int, run: int,
) -> Figure:  # fmt: skip
    url = fresh_database(server, f"{split}_{processes}_{run}", model)
    seconds, scoring = score_processes(url, model_dir, split, processes)
    check_stored(url, SPLITS[split], processes)
    figure = Figure(split, SPLITS[split], processes, run, seconds, scoring, os.getloadavg())
    load = ", ".join(f"{x:.2f}" for x in figure.load)
    each = ", ".join(f"{t:.2f}" for t in scoring)
    print(
        f"run {run + 1} {split:5} N={processes}: {seconds:6.2f} s, {figure.rate:7,.0f} images/s"
        f" (predict+store per process: {each} s), stored once each: ok; load {load}",
        flush=True,
    )
    return figure


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--model-dir", type=Path, help="default: train a fast model")
    parser.add_argument("--json", type=Path, help="also write every figure here")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="digitlab-bench-") as tmp:
        model_dir = args.model_dir or train_model(Path(tmp))
        model = registry.resolve(model_dir)
        print(f"model {model.version}; {os.cpu_count()} CPUs; load {os.getloadavg()}")
        with PostgresServer.start(durable=True) as server:
            figures = [
                measure(server, model, model_dir, split, processes, run)
                for run in range(args.runs)  # interleaved: run 1 of each, then run 2, ...
                for split in SPLITS
                for processes in (1, 2)
            ]
    report(figures)
    if args.json:
        args.json.write_text(json.dumps([asdict(f) for f in figures], indent=2))


def report(figures: list[Figure]) -> None:
    """Medians per configuration, N=1 beside N=2 from the same interleaved runs."""
    print(
        "\n| images | N | wall, median (runs) | images/s | predict+store, slowest process, "
        "median | load averages after each run |"
    )
    print("|---:|---:|---|---:|---:|---|")
    for split, images in SPLITS.items():
        for processes in (1, 2):
            mine = [f for f in figures if f.split == split and f.processes == processes]
            wall = statistics.median(f.seconds for f in mine)
            slowest = statistics.median(max(f.scoring) for f in mine)
            runs = ", ".join(f"{f.seconds:.2f}" for f in mine)
            loads = "; ".join(f"{f.load[0]:.2f}" for f in mine)
            print(
                f"| {images:,} ({split}) | {processes} | {wall:.2f} s ({runs}) "
                f"| {images / wall:,.0f} | {slowest:.2f} s | {loads} |"
            )


if __name__ == "__main__":
    main()
