"""Monitor query benchmark: the store reads behind GET /api/v1/monitor (window counts by
label and confidence bin, trusted-label counts, inputs waiting for review) over
1,000,000 stored predictions on a throwaway PostgreSQL, with migration 0006's indexes
and, in the same run, without them (dropped, then the same queries again).

    python bench/monitor.py                 # 1,000,000 predictions, median of 5
    python bench/monitor.py --rows 100000 --repeat 3

The rows are made by the server (generate_series): predictions spread evenly over the
last 8 days, 70% by the serving version and 30% by the one before, confidence skewed
towards 1 like a good model's, and 20,000 corrections (half a labeller's). Goal: the
week window (every row of the last 7 days) in <= 300 ms on 2 cores.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, create_engine, text

from digitlab.store import db, migrate
from digitlab.store import monitor as store
from digitlab.store.testing_pg import PostgresServer
from procfs import cpu_seconds

GOAL_MS = 300.0
WINDOWS = {"hour": timedelta(hours=1), "day": timedelta(days=1), "week": timedelta(weeks=1)}
INDEXES = {
    "ix_predictions_monitor": "predictions (model_id, created_at, label, confidence, is_digit)",
    "ix_feedback_source_prediction_id": "feedback (source, prediction_id)",
}


def fill(engine: Engine, rows: int) -> tuple[list[int], datetime]:
    """`rows` inputs and predictions, and corrections on some; returns the two model ids
    and the time the data ends."""
    now = datetime.now(UTC)
    span = timedelta(days=8).total_seconds()
    with engine.begin() as conn:
        ids = [
            conn.execute(
                text(
                    "INSERT INTO models (version, dataset, onnx_sha256, metrics)"
                    " VALUES (:v, 'mnist', repeat('0', 64), '{}') RETURNING id"
                ),
                {"v": version},
            ).scalar_one()
            for version in ("bench-serving", "bench-previous")
        ]
        params = {"n": rows, "now": now, "span": span}
        conn.execute(
            text(
                "INSERT INTO input_data (id, image, sha256, source, created_at)"
                " SELECT i, decode(repeat('00', 784), 'hex'), md5(i::text) || md5(i::text),"
                " 'bench', :now - make_interval(secs => :span * i / :n)"
                " FROM generate_series(1, :n) AS i"
            ),
            params,
        )
        conn.execute(
            text(
                "INSERT INTO predictions (id, input_id, model_id, label, confidence,"
                " probabilities, latency_ms, created_at)"
                " SELECT i, i, CASE WHEN i % 10 < 7 THEN :serving ELSE :previous END,"
                " (i * 7) % 10, 1 - power(random(), 4) * 0.9,"
                " array_fill(0.1::real, ARRAY[10]), 1.0,"
                " :now - make_interval(secs => :span * i / :n)"
                " FROM generate_series(1, :n) AS i"
            ),
            params | {"serving": ids[0], "previous": ids[1]},
        )
        conn.execute(
            text(
                "INSERT INTO feedback (prediction_id, label, source)"
                " SELECT (i * 37) % :n + 1, i % 10,"
                " CASE WHEN i % 2 = 0 THEN 'labeller' ELSE 'anonymous' END"
                " FROM generate_series(1, 20000) AS i"
            ),
            params,
        )
        for table in ("input_data", "predictions", "feedback"):
            conn.execute(
                text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), :n)"), params
            )
    vacuum(engine)
    return ids, now


def vacuum(engine: Engine) -> None:
    # VACUUM cannot run in a transaction; it also sets the visibility map that lets
    # PostgreSQL answer from an index alone, as autovacuum would on a live database.
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE"))


def monitor_queries(engine: Engine, ids: list[int], since: datetime) -> int:
    """What `GET /api/v1/monitor` asks the store; returns the requests counted."""
    with db.transaction(engine) as session:
        found = store.read(session, model_ids=ids, since=since)
    return sum(c.requests for c in found.counts.values())


def measure(engine: Engine, ids: list[int], now: datetime, repeat: int) -> dict[str, float]:
    found = {}
    for name, width in WINDOWS.items():
        monitor_queries(engine, ids, now - width)  # warm the cache, as a live server is
        times = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            requests = monitor_queries(engine, ids, now - width)
            times.append((time.perf_counter() - t0) * 1000)
        found[name] = statistics.median(times)
        print(f"  {name:>4}: {found[name]:8.1f} ms  ({requests:,} predictions in the window)")
    return found


def server_cpu(url: str, ids: list[int], now: datetime, repeat: int) -> dict[str, float]:
    """CPU milliseconds the server spends on the monitor's reads per call, with parallel
    workers off so that one backend does all the work: the cost that no other load on
    the machine changes (wall time on a busy machine shows the share of the cores it got)."""
    serial = create_engine(
        db.parse_url(url),
        pool_size=1,
        connect_args={"options": "-c max_parallel_workers_per_gather=0"},
    )
    with serial.connect() as conn:
        pid = int(conn.execute(text("SELECT pg_backend_pid()")).scalar_one())
    found = {}
    for name, width in WINDOWS.items():
        monitor_queries(serial, ids, now - width)
        before = cpu_seconds(pid)
        for _ in range(repeat):
            monitor_queries(serial, ids, now - width)
        found[name] = (cpu_seconds(pid) - before) * 1000 / repeat
    serial.dispose()
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"{args.rows:,} predictions on PostgreSQL, {os.cpu_count()} cores (load {load}),")
    print(f"median of {args.repeat}, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")
    with PostgresServer.start() as pg:
        url = pg.create_database("bench_monitor")
        engine = db.make_engine(url)
        migrate.upgrade(engine)
        t0 = time.perf_counter()
        ids, now = fill(engine, args.rows)
        print(f"filled in {time.perf_counter() - t0:.0f} s")
        print("with migration 0006's indexes:")
        indexed = measure(engine, ids, now, args.repeat)
        indexed_cpu = server_cpu(url, ids, now, args.repeat)
        with engine.begin() as conn:
            for name in INDEXES:
                conn.execute(text(f"DROP INDEX {name}"))
        vacuum(engine)
        print("without them (dropped):")
        bare = measure(engine, ids, now, args.repeat)
        bare_cpu = server_cpu(url, ids, now, args.repeat)
        engine.dispose()
    print("wall time (median) and the server's CPU time per call (one backend, mean):")
    head = ("window", "indexed", "no index", "ratio", "CPU idx", "CPU none")
    print("{:>6} {:>10} {:>10} {:>6}   {:>8} {:>9}".format(*head))
    for name in WINDOWS:
        ratio = bare[name] / indexed[name]
        print(
            f"{name:>6} {indexed[name]:7.1f} ms {bare[name]:7.1f} ms {ratio:5.1f}x"
            f"   {indexed_cpu[name]:5.0f} ms {bare_cpu[name]:6.0f} ms"
        )
    print(f"load average after: {', '.join(f'{x:.1f}' for x in os.getloadavg())}")
    verdict = "met" if indexed["week"] <= GOAL_MS else "MISSED"
    print(f"goal: week window <= {GOAL_MS:.0f} ms: {verdict} ({indexed['week']:.1f} ms)")


if __name__ == "__main__":
    main()
