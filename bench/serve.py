"""Serving benchmark: `digitlab serve`, as users run it, in front of a throwaway
PostgreSQL server (fsync on; --no-fsync for the CPU-bound figure), driven by a load
generator in a separate process on the same machine; in the same runs, interleaved, the
baseline `bench/naive_app.py` (the reference API's design on this project's parts); then
the model alone, onnxruntime beside torch eager.

    python bench/serve.py                 # the current model; 3 runs of each, medians
    python bench/serve.py --requests 4000 # requests per concurrent run

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

from digitlab import registry
from digitlab.config import get_settings
from digitlab.data import load_split
from digitlab.inference import OnnxClassifier
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


def client_loop(port: int, payloads: list[bytes], n: int, out: list[tuple[float, int]]) -> None:
    """One keep-alive connection sending `n` requests one after another."""
    requests = predict_requests(payloads)
    with RawClient(port) as client:
        for k in range(n):
            start = time.perf_counter()
            status = client.send(requests[k % len(requests)])
            out.append((time.perf_counter() - start, status))


def load(port: int, clients: int, requests: int) -> dict[str, Any]:
    """The load generator (run in its own process): `requests` in all over `clients`."""
    payloads = bodies(500)
    warm: list[tuple[float, int]] = []
    client_loop(port, payloads, 50, warm)  # warm-up: connections, first model call
    results: list[list[tuple[float, int]]] = [[] for _ in range(clients)]
    threads = [
        threading.Thread(target=client_loop, args=(port, payloads, requests // clients, r))
        for r in results
    ]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seconds = time.perf_counter() - start
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
    }


def run_load(port: int, clients: int, requests: int) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--load", str(port), str(clients), str(requests)]
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
        net = build_model(checkpoint["arch"], checkpoint.get("width")).eval()
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
    parser.add_argument("--load", nargs=3, type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.load:
        print(json.dumps(load(*args.load)))
        return
    settings = get_settings()
    model = registry.resolve(settings.model_dir)
    print(f"model {model.version}, {os.cpu_count()} CPUs, load average {os.getloadavg()}")
    print(f"PostgreSQL fsync {'off' if args.no_fsync else 'on'}")
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
