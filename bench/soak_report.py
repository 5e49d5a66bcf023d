"""bench/soak.py's table and verdict, from what the run measured."""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from typing import Any

from procfs import Sample

RSS_GROWTH_LIMIT = 0.02  # second-half RSS growth, as a fraction, above which it leaks
P99_DRIFT_LIMIT = 1.5  # last minutes' p99 over the first minutes', above which it drifts


@dataclass
class Outcome:
    load: dict[str, Any]  # the load generator's counts: warm-up, then per minute
    samples: list[Sample]  # at the start, every few seconds, and idle after the load
    stored: int  # rows in PostgreSQL
    wal_bytes: int  # WAL PostgreSQL wrote during the run
    checkpoints: int  # checkpoints it completed during the run


def _cpu(after: Sample, before: Sample, seconds: float) -> tuple[float, float]:
    """The service's and other work's CPU between two samples, in % of one core."""
    service = after.service_cpu - before.service_cpu
    others = (after.busy - before.busy) - (after.ours_cpu - before.ours_cpu)
    return 100 * service / seconds, 100 * max(0.0, others) / seconds


def table(outcome: Outcome) -> None:
    rows, samples = outcome.load["minutes"], outcome.samples
    at = {round(s.at): s for s in samples[:-1]}
    start, idle = samples[0], samples[-1]
    print(
        "| minute | answered | req/s | p50 ms | p99 ms | non-200 | conn errors | RSS MiB "
        "| service CPU | service CPU µs/req | others' CPU | load avg 1m |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    warm = outcome.load["warm_ok"] + outcome.load["warm_failed"]
    print(
        f"| warm-up | {warm:,} | | | | {outcome.load['warm_failed']} | | {start.rss_mib:.1f} "
        f"| | | | {start.load_1m:.2f} |"
    )
    for k, row in enumerate(rows, 1):
        s, before = at.get(60 * k), at.get(60 * (k - 1))
        if s is None or before is None:  # the load ended early
            continue
        service, others = _cpu(s, before, 60)
        per_request = 1e6 * (s.service_cpu - before.service_cpu) / max(1, row["answered"])
        print(
            f"| {k} | {row['answered']:,} | {row['answered'] / 60:,.0f} | {row['p50_ms']:.2f} "
            f"| {row['p99_ms']:.1f} | {row['non_200']} | {row['conn_errors']} "
            f"| {s.rss_mib:.1f} | {service:.0f}% | {per_request:.0f} | {others:.0f}% "
            f"| {s.load_1m:.2f} |"
        )
    print(f"| idle after | | | | | | | {idle.rss_mib:.1f} | | | | {idle.load_1m:.2f} |")


def report(outcome: Outcome, minutes: int) -> bool:
    """Print the table and the verdict; True when everything held."""
    table(outcome)
    print()
    rows, samples = outcome.load["minutes"], outcome.samples
    load = outcome.load
    answered_ok = load["warm_ok"] + sum(r["answered"] - r["non_200"] for r in rows)
    errors = load["warm_failed"] + sum(r["non_200"] + r["conn_errors"] for r in rows)
    match = outcome.stored == answered_ok
    print(
        f"rows in PostgreSQL {outcome.stored:,}, 200 answers {answered_ok:,} (warm-up "
        f"included): {'equal' if match else 'MISMATCH'}; errors {errors}"
    )
    running, start, idle = samples[:-1], samples[0], samples[-1]
    end = running[-1]
    _, others = _cpu(end, start, end.at)
    steal = 100 * (end.steal - start.steal) / end.at
    print(
        f"during the load: PostgreSQL wrote {outcome.wal_bytes / 2**30:.2f} GiB of WAL and "
        f"completed {outcome.checkpoints} checkpoints; other work on the machine used "
        f"{others:.0f}% of a core on average, hypervisor steal {steal:.1f}%"
    )

    # Memory: from half time to the end of the load, the level and the trend.
    half = min(running, key=lambda s: abs(s.at - 30 * minutes))
    growth = (end.rss_mib - half.rss_mib) / half.rss_mib
    second = [s for s in running if s.at >= half.at]
    slope = statistics.linear_regression([s.at / 60 for s in second], [s.rss_mib for s in second])
    print(
        f"RSS: start {start.rss_mib:.1f} MiB, half time ({half.at / 60:.1f} min) "
        f"{half.rss_mib:.1f} MiB, end of load {end.rss_mib:.1f} MiB, idle after "
        f"{idle.rss_mib:.1f} MiB; second half {end.rss_mib - half.rss_mib:+.1f} MiB "
        f"({100 * growth:+.1f}%), trend {slope.slope:+.2f} MiB/min"
    )

    # Latency, throughput and the service's CPU per request: first minutes against last.
    k = max(1, minutes // 5)
    first, last = rows[:k], rows[-k:]
    first_p99 = statistics.fmean(r["p99_ms"] for r in first)
    last_p99 = statistics.fmean(r["p99_ms"] for r in last)
    first_rps = sum(r["answered"] for r in first) / (60 * k)
    last_rps = sum(r["answered"] for r in last) / (60 * k)
    first_cpu = _per_request(samples, first, 0)
    last_cpu = _per_request(samples, last, minutes - k)
    drift = last_p99 / first_p99
    print(
        f"first {k} min against last {k} min: p99 (mean of per-minute p99) {first_p99:.1f} -> "
        f"{last_p99:.1f} ms ({drift:.2f}x); throughput {first_rps:,.0f} -> {last_rps:,.0f} "
        f"req/s ({last_rps / first_rps:.2f}x); service CPU per request {first_cpu:.0f} -> "
        f"{last_cpu:.0f} µs ({last_cpu / first_cpu:.2f}x)"
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


def _per_request(samples: list[Sample], rows: list[dict[str, Any]], first_minute: int) -> float:
    """The service's CPU µs per answered request over `rows`, from minute `first_minute`."""
    at = {round(s.at): s for s in samples[:-1]}
    before, after = at.get(60 * first_minute), at.get(60 * (first_minute + len(rows)))
    if before is None or after is None:  # the load ended early
        return math.nan
    answered = max(1, sum(int(r["answered"]) for r in rows))
    return 1e6 * (after.service_cpu - before.service_cpu) / answered
