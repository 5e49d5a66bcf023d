"""Soak benchmark: `digitlab serve` for minutes on end under steady load, in front of a
throwaway PostgreSQL server (fsync on), to show that memory and latency hold still.

    python bench/soak.py                    # 10 minutes, 16 keep-alive clients
    python bench/soak.py --minutes 2        # a quick run

The service is started as a user starts it (bench/harness.py, shared with
bench/serve.py); a load generator in a separate process warms it up, then keeps
`--clients` connections busy until the time is up (or `--max-requests` are sent).
Printed per minute: requests answered, requests/s, p50 and p99 latency, non-200 answers,
connection errors, the service process's resident memory (VmRSS) and CPU, the load
average. At the end: rows in PostgreSQL against 200 answers (MISMATCH when they differ),
and a verdict on drift: RSS growth over the second half, p99 and throughput of the last
minutes against the first. Exits 1 on a mismatch, an error, growth or drift.

Needs a trained model (`digitlab train`) and the MNIST files (DIGITLAB_DATA_DIR).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from digitlab.config import get_settings
from digitlab.registry import versions as registry
from digitlab.store.testing_pg import PostgresServer, free_port
from harness import (
    SERVICE,
    RawClient,
    bodies,
    fresh_database,
    percentile,
    predict_requests,
    predictions_count,
    start_service,
    wal_and_checkpoints,
)
from procfs import Sampler, serving_pid
from soak_report import Outcome, report

WARMUP = 200  # requests per client before the clock starts
SAMPLE_EVERY = 10  # seconds between samples of the service's memory and CPU
TIMEOUT = 30.0  # seconds a request may take before it counts as a connection error


@dataclass
class Minute:
    latencies: list[float] = field(default_factory=list)  # seconds, answered requests
    non_200: int = 0
    conn_errors: int = 0


@dataclass
class Tally:
    """One client's counts: the warm-up's, then per minute of the run."""

    minutes: list[Minute]
    warm_ok: int = 0
    warm_failed: int = 0


class Run:
    """What the clients share: when to start, when to stop, how many each may send."""

    def __init__(self, clients: int, seconds: float, max_requests: int) -> None:
        self.warmed = threading.Barrier(clients + 1, timeout=300)
        self.started = threading.Event()
        self.seconds = seconds
        self.cap = max_requests // clients
        self.t0 = self.deadline = 0.0


class Connection:
    """A keep-alive connection that reconnects after a failure; `send` gives the status,
    or None when the connection failed (the caller counts it)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.client: RawClient | None = None

    def send(self, request: bytes) -> int | None:
        try:
            if self.client is None:
                self.client = RawClient(self.port, timeout=TIMEOUT)
            return self.client.send(request)
        except OSError:
            if self.client is not None:
                self.client.close()
                self.client = None
            time.sleep(0.1)  # a service that is down is not hammered
            return None


def client(port: int, requests: list[bytes], run: Run, tally: Tally) -> None:
    conn = Connection(port)
    for k in range(WARMUP):
        status = conn.send(requests[k % len(requests)])
        tally.warm_ok += status == 200
        tally.warm_failed += status != 200
    run.warmed.wait()
    run.started.wait()
    last = len(tally.minutes) - 1
    for k in range(WARMUP, WARMUP + run.cap):
        start = time.perf_counter()
        if start >= run.deadline:
            break
        status = conn.send(requests[k % len(requests)])
        end = time.perf_counter()
        minute = tally.minutes[min(last, int((end - run.t0) // 60))]
        if status is None:
            minute.conn_errors += 1
            continue
        minute.latencies.append(end - start)
        minute.non_200 += status != 200
    if conn.client is not None:
        conn.client.close()


def load(port: int, clients: int, seconds: float, max_requests: int) -> dict[str, Any]:
    """The load generator (its own process): warm up, say "warm", wait for a line on
    stdin, then load the service for `seconds`; counts per minute."""
    requests = predict_requests(bodies(500))
    run = Run(clients, seconds, max_requests)
    minutes = math.ceil(seconds / 60)
    tallies = [Tally([Minute() for _ in range(minutes)]) for _ in range(clients)]
    threads = [threading.Thread(target=client, args=(port, requests, run, t)) for t in tallies]
    for t in threads:
        t.start()
    run.warmed.wait()
    print("warm", flush=True)
    sys.stdin.readline()
    run.t0 = time.perf_counter()
    run.deadline = run.t0 + seconds
    run.started.set()
    for t in threads:
        t.join()
    rows = []
    for k in range(minutes):
        latencies = sorted(s for t in tallies for s in t.minutes[k].latencies)
        rows.append(
            {
                "answered": len(latencies),
                "non_200": sum(t.minutes[k].non_200 for t in tallies),
                "conn_errors": sum(t.minutes[k].conn_errors for t in tallies),
                "p50_ms": 1000 * percentile(latencies, 0.5) if latencies else math.nan,
                "p99_ms": 1000 * percentile(latencies, 0.99) if latencies else math.nan,
            }
        )
    return {
        "warm_ok": sum(t.warm_ok for t in tallies),
        "warm_failed": sum(t.warm_failed for t in tallies),
        "minutes": rows,
    }


def soak(pg: PostgresServer, args: argparse.Namespace) -> Outcome:
    """Run the service and the load on a new database; samples at the start, every
    SAMPLE_EVERY seconds, and idle after."""
    url = fresh_database(pg, "soak")
    port = free_port()
    service = start_service(SERVICE, url, port, pg.root / "soak.log")
    seconds = 60 * args.minutes
    try:
        pid = serving_pid(service.pid, port)
        cmdline = Path(f"/proc/{pid}/cmdline").read_text().replace("\0", " ").strip()
        print(f"measuring PID {pid}: {cmdline}")
        postmaster = int((pg.data_dir / "postmaster.pid").read_text().split()[0])
        sampler = Sampler(pid, helpers=[os.getpid(), postmaster])
        cmd = [
            sys.executable,
            __file__,
            "--load",
            str(port),
            str(args.clients),
            str(seconds),
            str(args.max_requests),
        ]
        gen = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert gen.stdin is not None and gen.stdout is not None
        if gen.stdout.readline().strip() != "warm":
            raise SystemExit("the load generator failed before its warm-up ended")
        wal, checkpoints = wal_and_checkpoints(url)
        samples = [sampler.take(0)]
        gen.stdin.write("go\n")
        gen.stdin.flush()
        t0 = time.monotonic()
        for k in range(1, seconds // SAMPLE_EVERY + 1):
            try:
                gen.wait(timeout=max(0.0, t0 + k * SAMPLE_EVERY - time.monotonic()))
                break  # the load ended early (--max-requests)
            except subprocess.TimeoutExpired:
                samples.append(sampler.take(k * SAMPLE_EVERY))
            if k * SAMPLE_EVERY % 60 == 0:
                rss = samples[-1].rss_mib
                print(f"  minute {k * SAMPLE_EVERY // 60}: RSS {rss:.1f} MiB", file=sys.stderr)
        try:
            out, _ = gen.communicate(timeout=TIMEOUT + 30)
        except subprocess.TimeoutExpired:
            gen.kill()
            raise SystemExit("the load generator did not stop by itself") from None
        if gen.returncode != 0:
            raise SystemExit(f"the load generator failed (exit {gen.returncode})")
        time.sleep(1)  # the last answers are out; the service is idle
        samples.append(sampler.take(time.monotonic() - t0))
        wal_after, checkpoints_after = wal_and_checkpoints(url)
    finally:
        service.terminate()
        service.wait()
    return Outcome(
        load=json.loads(out.strip().splitlines()[-1]),
        samples=samples,
        stored=predictions_count(url),
        wal_bytes=wal_after - wal,
        checkpoints=checkpoints_after - checkpoints,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=int, default=10)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--max-requests", type=int, default=5_000_000, help="a bound in count")
    parser.add_argument("--load", nargs=4, type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.load:
        print(json.dumps(load(*args.load)))
        return
    if args.minutes < 1 or args.clients < 1:
        parser.error("--minutes and --clients must be at least 1")
    model = registry.resolve(get_settings().model_dir)
    print(f"model {model.version}, {os.cpu_count()} CPUs, load average {os.getloadavg()}")
    print(f"{args.minutes} min, {args.clients} clients, PostgreSQL fsync on")
    with PostgresServer.start(durable=True) as pg:
        outcome = soak(pg, args)
    print()
    if not report(outcome, args.minutes):
        sys.exit(1)


if __name__ == "__main__":
    main()
