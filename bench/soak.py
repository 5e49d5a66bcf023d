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
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from digitlab import registry
from digitlab.config import get_settings
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
)
from procfs import Sample, sample, serving_pid

WARMUP = 200  # requests per client before the clock starts
SAMPLE_EVERY = 10  # seconds between samples of the service's memory and CPU
TIMEOUT = 30.0  # seconds a request may take before it counts as a connection error
RSS_GROWTH_LIMIT = 0.02  # second-half RSS growth, as a fraction, above which it leaks
P99_DRIFT_LIMIT = 1.5  # last minutes' p99 over the first minutes', above which it drifts


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


def soak(pg: PostgresServer, args: argparse.Namespace) -> tuple[dict[str, Any], list[Sample], int]:
    """Run the service and the load on a new database: (the load's counts, the
    samples: start, every SAMPLE_EVERY seconds, idle after; the rows stored)."""
    url = fresh_database(pg, "soak")
    port = free_port()
    service = start_service(SERVICE, url, port, pg.root / "soak.log")
    seconds = 60 * args.minutes
    try:
        pid = serving_pid(service.pid, port)
        cmdline = Path(f"/proc/{pid}/cmdline").read_text().replace("\0", " ").strip()
        print(f"measuring PID {pid}: {cmdline}")
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
        samples = [sample(pid, 0)]
        gen.stdin.write("go\n")
        gen.stdin.flush()
        t0 = time.monotonic()
        for k in range(1, seconds // SAMPLE_EVERY + 1):
            try:
                gen.wait(timeout=max(0.0, t0 + k * SAMPLE_EVERY - time.monotonic()))
                break  # the load ended early (--max-requests)
            except subprocess.TimeoutExpired:
                samples.append(sample(pid, k * SAMPLE_EVERY))
            if k * SAMPLE_EVERY % 60 == 0:
                s = samples[-1]
                print(
                    f"  minute {k * SAMPLE_EVERY // 60}: RSS {s.rss_mib:.1f} MiB", file=sys.stderr
                )
        try:
            out, _ = gen.communicate(timeout=TIMEOUT + 30)
        except subprocess.TimeoutExpired:
            gen.kill()
            raise SystemExit("the load generator did not stop by itself") from None
        if gen.returncode != 0:
            raise SystemExit(f"the load generator failed (exit {gen.returncode})")
        time.sleep(1)  # the last answers are out; the service is idle
        samples.append(sample(pid, time.monotonic() - t0))
    finally:
        service.terminate()
        service.wait()
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return result, samples, predictions_count(url)


def report(result: dict[str, Any], samples: list[Sample], stored: int, minutes: int) -> bool:
    """Print the table and the verdict; True when everything held."""
    rows = result["minutes"]
    at = {round(s.at): s for s in samples[:-1]}
    print(
        "| minute | answered | req/s | p50 ms | p99 ms | non-200 | conn errors | RSS MiB "
        "| service CPU | load avg 1m |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    start, idle = samples[0], samples[-1]
    warm = result["warm_ok"] + result["warm_failed"]
    print(
        f"| warm-up | {warm:,} | | | | {result['warm_failed']} | | {start.rss_mib:.1f} | | "
        f"{start.load_1m:.2f} |"
    )
    for k, row in enumerate(rows, 1):
        s, before = at.get(60 * k), at.get(60 * (k - 1))
        rss = f"{s.rss_mib:.1f}" if s else "-"
        cpu = f"{100 * (s.cpu_s - before.cpu_s) / 60:.0f}%" if s and before else "-"
        load = f"{s.load_1m:.2f}" if s else "-"
        print(
            f"| {k} | {row['answered']:,} | {row['answered'] / 60:,.0f} | {row['p50_ms']:.2f} | "
            f"{row['p99_ms']:.1f} | {row['non_200']} | {row['conn_errors']} | {rss} | {cpu} "
            f"| {load} |"
        )
    print(f"| idle after | | | | | | | {idle.rss_mib:.1f} | | {idle.load_1m:.2f} |")
    print()

    answered_ok = result["warm_ok"] + sum(r["answered"] - r["non_200"] for r in rows)
    errors = result["warm_failed"] + sum(r["non_200"] + r["conn_errors"] for r in rows)
    match = stored == answered_ok
    print(
        f"rows in PostgreSQL {stored:,}, 200 answers {answered_ok:,} (warm-up included): "
        f"{'equal' if match else 'MISMATCH'}; errors {errors}"
    )

    # Memory: from half time to the end of the load, the level and the trend.
    running = samples[:-1]
    half = min(running, key=lambda s: abs(s.at - 30 * minutes))
    end = running[-1]
    growth = (end.rss_mib - half.rss_mib) / half.rss_mib
    second = [s for s in running if s.at >= half.at]
    slope = statistics.linear_regression([s.at / 60 for s in second], [s.rss_mib for s in second])
    print(
        f"RSS: start {start.rss_mib:.1f} MiB, half time ({half.at / 60:.1f} min) "
        f"{half.rss_mib:.1f} MiB, end of load {end.rss_mib:.1f} MiB, idle after "
        f"{idle.rss_mib:.1f} MiB; second half {end.rss_mib - half.rss_mib:+.1f} MiB "
        f"({100 * growth:+.1f}%), trend {slope.slope:+.2f} MiB/min"
    )

    # Latency and throughput: the first minutes against the last.
    k = max(1, minutes // 5)
    first_p99 = statistics.fmean(r["p99_ms"] for r in rows[:k])
    last_p99 = statistics.fmean(r["p99_ms"] for r in rows[-k:])
    first_rps = sum(r["answered"] for r in rows[:k]) / (60 * k)
    last_rps = sum(r["answered"] for r in rows[-k:]) / (60 * k)
    drift = last_p99 / first_p99
    print(
        f"p99 (mean of per-minute p99): first {k} min {first_p99:.1f} ms, last {k} min "
        f"{last_p99:.1f} ms ({drift:.2f}x); throughput {first_rps:,.0f} -> {last_rps:,.0f} "
        f"req/s ({last_rps / first_rps:.2f}x)"
    )

    leak = growth > RSS_GROWTH_LIMIT
    drifts = drift > P99_DRIFT_LIMIT
    print(
        f"verdict: {'RSS GROWING' if leak else 'RSS flat'} (second half {100 * growth:+.1f}%, "
        f"limit {100 * RSS_GROWTH_LIMIT:.0f}%); "
        f"{'LATENCY DRIFT' if drifts else 'no latency drift'} "
        f"(p99 {drift:.2f}x, limit {P99_DRIFT_LIMIT}x); {errors} errors; "
        f"rows {'= answers' if match else 'MISMATCH'}"
    )
    return match and errors == 0 and not leak and not drifts


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
        result, samples, stored = soak(pg, args)
    print()
    if not report(result, samples, stored, args.minutes):
        sys.exit(1)


if __name__ == "__main__":
    main()
