"""Serving benchmark: `digitlab serve`, as users run it, in front of a throwaway
PostgreSQL server (fsync on; --no-fsync for the CPU-bound figure), driven by a load
generator in a separate process on the same machine; in the same runs, interleaved, the
baseline `bench/naive_app.py` (the reference API's design on this project's parts); then
the model alone, onnxruntime beside torch eager.

    python bench/serve.py                 # the current model; 3 runs of each, medians
    python bench/serve.py --requests 4000 # requests per concurrent run
    python bench/serve.py --workers 1 2 --runs 5   # instead: 16 clients against
        # `digitlab serve --workers 1` and `--workers 2`, interleaved, with the CPU each
        # process used and the load average beside every figure

Needs a trained model (`digitlab train`) and the MNIST files (DIGITLAB_DATA_DIR). The
request bodies are MNIST test digits as base64 PNG in JSON, as `POST /api/v1/predict`
takes them; every 200 is a row stored in PostgreSQL, which the benchmark counts.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from typing import Any

import numpy as np

from digitlab.config import get_settings
from digitlab.data import load_split
from digitlab.inference.runtime import OnnxClassifier
from digitlab.registry import versions as registry
from digitlab.store.testing_pg import PostgresServer, free_port
from harness import (
    BASELINE,
    SERVICE,
    RawClient,
    bodies,
    fresh_database,
    percentile,
    predict_requests,
    predictions_count,
    start_service,
)
from procfs import children, cpu_seconds, machine_busy, tree_cpu_seconds


def client_loop(port: int, payloads: list[bytes], n: int, out: list[tuple[float, int]]) -> None:
    """One keep-alive connection sending `n` requests one after another."""
    requests = predict_requests(payloads)
    with RawClient(port) as client:
        for k in range(n):
            start = time.perf_counter()
            status = client.send(requests[k % len(requests)])
            out.append((time.perf_counter() - start, status))


def cpu_now(watch: list[int]) -> list[float]:
    """CPU seconds so far: this process, each process tree in `watch`, the whole machine."""
    return [time.process_time(), *(tree_cpu_seconds(p) for p in watch), machine_busy()[0]]


def load(port: int, clients: int, requests: int, *watch: int) -> dict[str, Any]:
    """The load generator (run in its own process): `requests` in all over `clients`.
    With `watch` (the service's and PostgreSQL's PIDs), also the cores each used while
    the clients ran, beside this process's and the rest of the machine's."""
    payloads = bodies(500)
    warm: list[tuple[float, int]] = []
    client_loop(port, payloads, 50, warm)  # warm-up: connections, first model call
    results: list[list[tuple[float, int]]] = [[] for _ in range(clients)]
    threads = [
        threading.Thread(target=client_loop, args=(port, payloads, requests // clients, r))
        for r in results
    ]
    # The service's own processes (its workers, if any), to see how it split the work.
    parts = [watch[0], *children(watch[0])] if watch else []
    parts_before = [cpu_seconds(p) for p in parts]
    cpu_before = cpu_now(list(watch))
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seconds = time.perf_counter() - start
    cores = [(b - a) / seconds for a, b in zip(cpu_before, cpu_now(list(watch)), strict=True)]
    split = [(cpu_seconds(p) - b) / seconds for p, b in zip(parts, parts_before, strict=True)]
    latencies = sorted(s for r in results for s, _ in r)
    ok = sum(status == 200 for r in results for _, status in r)
    return {
        "requests": len(latencies),
        "warmup_ok": sum(status == 200 for _, status in warm),
        "ok": ok,
        "errors": len(latencies) - ok,
        "rps": len(latencies) / seconds,
        "p50_ms": 1000 * percentile(latencies, 0.5),
        "p99_ms": 1000 * percentile(latencies, 0.99),
        # Cores busy while the clients ran: this load generator, each of `watch`, and the
        # whole machine (all of these, other people's work, the kernel, the bench itself).
        "cores": {"load generator": cores[0], "watched": cores[1:-1], "machine": cores[-1]},
        "service_split": sorted((c for c in split if c >= 0.01), reverse=True),
        "load_avg": os.getloadavg(),
    }


def run_load(port: int, clients: int, requests: int, *watch: int) -> dict[str, Any]:
    args = [port, clients, requests, *watch]
    cmd = [sys.executable, __file__, "--load", *map(str, args)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True)
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def measure(
    pg: PostgresServer, name: str, cmd: list[str], single: int, clients: int, requests: int
) -> dict[str, Any]:
    """One client, then `clients` at once, against `cmd` on a new database; the rows
    stored are checked against the answers."""
    url = fresh_database(pg, name)
    port = free_port()
    service = start_service(cmd, url, port, pg.root / f"{name}.log")
    try:
        one = run_load(port, 1, single)
        many = run_load(port, clients, requests)
    finally:
        service.terminate()
        service.wait()
    # Warm-ups included: every 200 the service answered is a stored row.
    stored = predictions_count(url)
    answered = sum(r["ok"] + r["warmup_ok"] for r in (one, many))
    result = {
        "p50_1": one["p50_ms"],
        "rps": many["rps"],
        "p99": many["p99_ms"],
        "errors": one["errors"] + many["errors"],
        "rows_match": stored == answered,
    }
    print(f"{name}: {result} ({stored} rows for {answered} answers)")
    return result


def model_only(model: registry.ModelVersion, batch: int, reps: int) -> dict[str, float]:
    """Images/s on one large batch: onnxruntime (2 threads) and torch eager."""
    test = load_split("mnist", "test", get_settings(), download=False)
    images = np.concatenate([test.images] * (batch // len(test.images) + 1))[:batch]
    x = images[:, None].astype(np.float32) / 255
    onnx = OnnxClassifier(model, threads=2)
    onnx.logits(x, batch=batch)
    timings = []
    for _ in range(reps):
        start = time.perf_counter()
        onnx.logits(x, batch=batch)
        timings.append(time.perf_counter() - start)
    result = {"onnxruntime": batch / statistics.median(timings)}
    try:  # the baseline needs the [train] extra; serving never imports torch
        import torch

        from digitlab.ml.model import build_model

        checkpoint = torch.load(model.path / "model.pt", map_location="cpu")
        net = build_model(
            checkpoint["arch"],
            checkpoint.get("width"),
            int(checkpoint.get("hidden", 0)),
            int(checkpoint.get("outputs", 10)),  # 11 with the not-a-digit output
        ).eval()
        net.load_state_dict(checkpoint["state_dict"])
        torch.set_num_threads(2)
        tx = torch.from_numpy(x)
        with torch.inference_mode():
            net(tx)
            timings = []
            for _ in range(reps):
                start = time.perf_counter()
                net(tx)
                timings.append(time.perf_counter() - start)
        result["torch eager"] = batch / statistics.median(timings)
    except Exception as exc:  # reported, not fatal: the ONNX figure stands on its own
        print(f"torch baseline skipped: {exc}", file=sys.stderr)
    return result


ROWS = (
    ("1 client, p50 per request", "p50_1", "<= 3 ms", "{:.2f} ms"),
    ("16 clients, throughput", "rps", ">= 800 req/s", "{:,.0f} req/s"),
    ("16 clients, p99", "p99", "<= 50 ms", "{:.1f} ms"),
)


def table(ours: list[dict[str, Any]], base: list[dict[str, Any]]) -> None:
    med = statistics.median
    print("| measure | goal | digitlab serve, median (runs) | baseline, median (runs) |")
    print("|---|---|---|---|")
    for label, key, goal, fmt in ROWS:
        cells = []
        for results in (ours, base):
            values = [r[key] for r in results]
            runs = ", ".join(fmt.format(v).split()[0] for v in values)
            cells.append(f"{fmt.format(med(values))} ({runs})")
        print(f"| {label} | {goal} | {cells[0]} | {cells[1]} |")
    for results in (ours, base):
        errors = sum(r["errors"] for r in results)
        match = all(r["rows_match"] for r in results)
        results.append({"errors": errors, "rows_match": match})
    print(
        f"| errors; rows = answers | 0; yes | {ours[-1]['errors']}; {ours[-1]['rows_match']} | "
        f"{base[-1]['errors']}; {base[-1]['rows_match']} |"
    )


def measure_workers(
    pg: PostgresServer, name: str, workers: int, clients: int, requests: int
) -> dict[str, Any]:
    """`clients` at once against `digitlab serve --workers N` on a new database, with the
    cores each process used meanwhile; the rows stored are checked against the answers."""
    url = fresh_database(pg, name)
    port = free_port()
    postmaster = int((pg.data_dir / "postmaster.pid").read_text().split()[0])
    cmd = [*SERVICE, "--workers", str(workers)]
    service = start_service(cmd, url, port, pg.root / f"{name}.log")
    try:
        many = run_load(port, clients, requests, service.pid, postmaster)
    finally:
        service.terminate()
        service.wait()
    stored, answered = predictions_count(url), many["ok"] + many["warmup_ok"]
    service_cores, pg_cores = many["cores"]["watched"]
    loadgen_cores = many["cores"]["load generator"]
    result = {
        "rps": many["rps"],
        "p50": many["p50_ms"],
        "p99": many["p99_ms"],
        "service": service_cores,
        "service_us": service_cores * 1e6 / many["rps"],  # CPU per request, all workers
        "postgres": pg_cores,
        "loadgen": loadgen_cores,
        "others": many["cores"]["machine"] - service_cores - pg_cores - loadgen_cores,
        "load_1m": many["load_avg"][0],
        "errors": many["errors"],
        "rows_match": stored == answered,
    }
    print(
        f"{name}: {result['rps']:,.0f} req/s, p50 {result['p50']:.2f} ms, p99 "
        f"{result['p99']:.1f} ms; service CPU {result['service_us']:.0f} µs/request; "
        f"cores: service {service_cores:.2f} ("
        f"{' + '.join(f'{c:.2f}' for c in many['service_split'])} by process), PostgreSQL "
        f"{pg_cores:.2f}, load generator {result['loadgen']:.2f}, others "
        f"{result['others']:.2f}; load average {many['load_avg']}; "
        f"{stored} rows for {answered} answers, {result['errors']} errors",
        flush=True,
    )
    return result


WORKER_COLUMNS = (
    ("req/s", "rps", "{:,.0f}"),
    ("p50 ms", "p50", "{:.2f}"),
    ("p99 ms", "p99", "{:.1f}"),
    ("service cores", "service", "{:.2f}"),
    ("service CPU µs/request", "service_us", "{:.0f}"),
    ("PostgreSQL cores", "postgres", "{:.2f}"),
    ("load generator cores", "loadgen", "{:.2f}"),
    ("others' cores", "others", "{:.2f}"),
    ("load avg 1m", "load_1m", "{:.2f}"),
)


def compare_workers(
    pg: PostgresServer, counts: list[int], runs: int, clients: int, requests: int
) -> None:
    """Each worker count `runs` times, interleaved (the order flips every run, so neither
    always follows the other), then medians with every run's figure in brackets."""
    results: dict[int, list[dict[str, Any]]] = {n: [] for n in counts}
    for run in range(runs):
        for n in counts if run % 2 == 0 else counts[::-1]:
            results[n].append(measure_workers(pg, f"workers{n}_{run}", n, clients, requests))
    print(f"\n{clients} clients, {requests:,} requests a run; median (each run)")
    print("| workers | " + " | ".join(c[0] for c in WORKER_COLUMNS) + " | errors; rows = answers |")
    print("|---" * (len(WORKER_COLUMNS) + 2) + "|")
    for n, rs in results.items():
        cells = []
        for _, key, fmt in WORKER_COLUMNS:
            values = [r[key] for r in rs]
            each = ", ".join(fmt.format(v) for v in values)
            cells.append(f"{fmt.format(statistics.median(values))} ({each})")
        check = f"{sum(r['errors'] for r in rs)}; {all(r['rows_match'] for r in rs)}"
        print(f"| {n} | " + " | ".join(cells) + f" | {check} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--single", type=int, default=1500, help="requests, one client")
    parser.add_argument("--requests", type=int, default=8000, help="requests, 16 clients")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--batch", type=int, default=4096, help="images, model only")
    parser.add_argument(
        "--no-fsync", action="store_true", help="PostgreSQL without fsync: the CPU-bound figure"
    )
    parser.add_argument(
        "--workers", nargs="+", type=int, help="only compare `digitlab serve --workers N`"
    )
    parser.add_argument("--load", nargs="+", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.load:
        print(json.dumps(load(*args.load)))
        return
    settings = get_settings()
    model = registry.resolve(settings.model_dir)
    print(f"model {model.version}, {os.cpu_count()} CPUs, load average {os.getloadavg()}")
    print(f"PostgreSQL fsync {'off' if args.no_fsync else 'on'}")
    if args.workers:
        with PostgresServer.start(durable=not args.no_fsync) as pg:
            compare_workers(pg, args.workers, args.runs, args.clients, args.requests)
        return
    ours: list[dict[str, Any]] = []
    base: list[dict[str, Any]] = []
    with PostgresServer.start(durable=not args.no_fsync) as pg:
        for run in range(args.runs):
            # Interleaved, so that both see the same machine and the same server state.
            ours.append(
                measure(pg, f"serve_{run}", SERVICE, args.single, args.clients, args.requests)
            )
            base.append(
                measure(
                    pg, f"baseline_{run}", BASELINE, args.single, args.clients, args.requests // 4
                )
            )
    print()
    table(ours, base)
    rates = model_only(model, args.batch, 5)
    torch_rate = f"{rates['torch eager']:,.0f} (torch eager)" if "torch eager" in rates else "-"
    print(
        f"| model only, batch {args.batch}, images/s | >= 20,000 | "
        f"{rates['onnxruntime']:,.0f} (onnxruntime) | {torch_rate} |"
    )


if __name__ == "__main__":
    main()
