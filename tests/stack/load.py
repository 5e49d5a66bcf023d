"""A small load generator for the stack test: keep-alive clients on threads, each answer
kept (status and prediction id) so the rows in PostgreSQL can be checked against them."""

from __future__ import annotations

import base64
import http.client
import io
import json
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
from PIL import Image


def json_bodies(images: npt.NDArray[np.uint8]) -> list[bytes]:
    """`POST /api/v1/predict` bodies: each image as base64 PNG in JSON."""
    out = []
    for image in images:
        png = io.BytesIO()
        Image.fromarray(image).save(png, format="PNG")
        out.append(json.dumps({"image": base64.b64encode(png.getvalue()).decode()}).encode())
    return out


@dataclass
class LoadResult:
    seconds: float = 0.0
    ids: list[int] = field(default_factory=list)  # prediction ids of the 200 answers
    versions: Counter[str] = field(default_factory=Counter)  # model version of each 200
    failures: Counter[str] = field(default_factory=Counter)  # status or error name
    latencies: list[float] = field(default_factory=list)

    @property
    def requests(self) -> int:
        return len(self.latencies)

    @property
    def rps(self) -> float:
        return self.requests / self.seconds

    def percentile_ms(self, q: float) -> float:
        ordered = sorted(self.latencies)
        return 1000 * ordered[min(len(ordered) - 1, int(len(ordered) * q))]

    def summary(self) -> str:
        return (
            f"{self.requests} requests in {self.seconds:.1f} s: {self.rps:,.0f} req/s, "
            f"p50 {self.percentile_ms(0.5):.1f} ms, p99 {self.percentile_ms(0.99):.1f} ms, "
            f"{len(self.ids)} answered 200, failures {dict(self.failures) or 'none'}"
        )


def _client(
    port: int, bodies: list[bytes], count: int, result: LoadResult, lock: threading.Lock
) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    headers = {"Content-Type": "application/json"}
    for k in range(count):
        start = time.perf_counter()
        outcome: str | dict[str, object]
        try:
            conn.request("POST", "/api/v1/predict", bodies[k % len(bodies)], headers)
            resp = conn.getresponse()
            data = resp.read()
            outcome = json.loads(data) if resp.status == 200 else str(resp.status)
        except (OSError, http.client.HTTPException) as exc:
            outcome = type(exc).__name__
            conn.close()  # the next request opens a new connection
        elapsed = time.perf_counter() - start
        with lock:
            result.latencies.append(elapsed)
            if isinstance(outcome, dict):
                result.ids.append(int(str(outcome["prediction_id"])))
                result.versions[str(outcome["model_version"])] += 1
            else:
                result.failures[outcome] += 1
    conn.close()


def run_load(port: int, bodies: list[bytes], clients: int, requests: int) -> LoadResult:
    """`requests` in all over `clients` concurrent keep-alive connections."""
    result, lock = LoadResult(), threading.Lock()
    threads = [
        threading.Thread(target=_client, args=(port, bodies, requests // clients, result, lock))
        for _ in range(clients)
    ]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    result.seconds = time.perf_counter() - start
    return result
