"""A body over DIGITLAB_MAX_UPLOAD_BYTES gets a 413 with its JSON message in every client,
including those that read the answer only after sending everything (urllib), over real
sockets to a real service; an endless or slow body does not hold a connection for longer
than the drain bounds, and nothing is stored."""

from __future__ import annotations

import http.client
import io
import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from digitlab.data import Split
from digitlab.store.testing_pg import PostgresServer
from tests.api.conftest import b64, counts, png, served_on_postgres
from tests.utils.served import (
    SERVE,
    UVICORN_H11,
    Answer,
    Served,
    chunks,
    json_body,
    urllib_post,
)

LIMIT = 100_000
DRAIN_BYTES = 4_000_000
DRAIN_SECONDS = 2.0
JSON = {"Content-Type": "application/json"}


@pytest.fixture(scope="module", params=["httptools", "h11"])
def served(
    request: pytest.FixtureRequest,
    pg_server: PostgresServer,
    linear_models: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Served]:
    """`digitlab serve` (uvloop, httptools), and the app on uvicorn's h11 protocol."""
    command = SERVE if request.param == "httptools" else UVICORN_H11
    limits = {
        "DIGITLAB_MAX_UPLOAD_BYTES": str(LIMIT),
        "DIGITLAB_OVERSIZE_DRAIN_BYTES": str(DRAIN_BYTES),
        "DIGITLAB_OVERSIZE_DRAIN_SECONDS": str(DRAIN_SECONDS),
    }
    folder = tmp_path_factory.mktemp("too-large")
    with served_on_postgres(pg_server, linear_models, folder, command, **limits) as served:
        yield served


def assert_413(answer: Answer) -> None:
    assert answer.status == 413, answer.body
    assert answer.headers["content-type"] == "application/json"
    detail = answer.json()["detail"]
    assert "100,000-byte limit" in detail and "smaller image" in detail, detail


@pytest.mark.parametrize("size", [LIMIT + 1, 2_000_000])
def test_urllib_gets_the_413(served: Served, size: int) -> None:
    before = counts(served.settings)
    answer = urllib_post(f"{served.url}/api/v1/predict", json_body(size), JSON)
    assert_413(answer)
    assert answer.headers["connection"] == "close"
    assert counts(served.settings) == before


@pytest.mark.parametrize("framing", ["content-length", "chunked"])
def test_a_streamed_body_gets_the_413(served: Served, framing: str) -> None:
    body = json_body(2_000_000)
    # An iterable body goes out piece by piece: as declared, or chunk-encoded without it.
    headers = JSON | ({"Content-Length": str(len(body))} if framing == "content-length" else {})
    before = counts(served.settings)
    assert_413(urllib_post(f"{served.url}/api/v1/predict", chunks(body), headers))
    assert_413(urllib_post(f"{served.url}/api/v1/predict/batch", chunks(body), headers))
    assert counts(served.settings) == before


def test_a_body_fastapi_reads_itself_gets_the_413(served: Served) -> None:
    """FastAPI turns any error while it reads a body into a 400; the limit stays a 413."""
    body = b'{"label": 3, "note": "' + b"x" * 200_000 + b'"}'
    answer = urllib_post(f"{served.url}/api/v1/predictions/1/feedback", chunks(body), JSON)
    assert_413(answer)


def test_a_body_at_the_limit_is_served(served: Served, mnist_test: Split) -> None:
    # Random pixels compress badly: the PNG is most of the limit, spaces pad the rest.
    pixels = np.random.default_rng(0).integers(0, 256, (250, 250), dtype=np.uint8)
    body = b'{"image": "' + b64(png(pixels)).encode() + b'"}'
    assert 60_000 < len(body) <= LIMIT
    inputs, predictions = counts(served.settings)
    answer = urllib_post(f"{served.url}/api/v1/predict", body + b" " * (LIMIT - len(body)), JSON)
    assert answer.status == 200, answer.body
    assert counts(served.settings) == (inputs + 1, predictions + 1)


def endless_post(port: int, pause: float) -> tuple[bytes, int, float]:
    """Declares 10 GB and sends 1 KB, then waits `pause` for an answer, over and over,
    until the service closes; returns what it read, the bytes sent and the seconds."""
    received, sent = b"", 0
    start = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(
            b"POST /api/v1/predict HTTP/1.1\r\nHost: test\r\n"
            b"Content-Type: application/json\r\nContent-Length: 10000000000\r\n\r\n"
        )
        sock.settimeout(pause or None)
        try:
            while time.monotonic() - start < 60:
                sock.sendall(b"A" * 1024)
                sent += 1024
                if not pause:
                    continue
                try:
                    data = sock.recv(65536)
                except TimeoutError:
                    continue
                if not data:
                    break
                received += data
        except (ConnectionResetError, BrokenPipeError):
            pass  # the service closed with bytes of ours unread: the kernel resets
    return received, sent, time.monotonic() - start


def test_a_slow_endless_body_is_answered_then_cut_off(served: Served, mnist_test: Split) -> None:
    before = counts(served.settings)
    result: list[tuple[bytes, int, float]] = []
    client = threading.Thread(target=lambda: result.append(endless_post(served.port, 0.02)))
    client.start()
    try:
        # The service answers others while it drains the slow body.
        time.sleep(0.5)
        image = {"image": b64(png(mnist_test.images[0]))}
        start = time.monotonic()
        answer = urllib_post(f"{served.url}/api/v1/predict", json.dumps(image).encode(), JSON)
        assert answer.status == 200 and time.monotonic() - start < 1, answer.body
        assert client.is_alive()
    finally:
        client.join(timeout=60)
    received, _, seconds = result[0]
    head, _, body = received.partition(b"\r\n\r\n")
    status_line, _, fields = head.partition(b"\r\n")
    assert status_line.startswith(b"HTTP/1.1 413"), received
    assert_413(Answer(413, http.client.parse_headers(io.BytesIO(fields + b"\r\n\r\n")), body))
    # Drained for DRAIN_SECONDS (so a reader-after-sending would have had its chance),
    # then closed.
    assert DRAIN_SECONDS * 0.8 < seconds < DRAIN_SECONDS + 3, seconds
    inputs, predictions = before
    assert counts(served.settings) == (inputs + 1, predictions + 1)


def test_a_fast_endless_body_is_cut_off_after_the_drain_bytes(served: Served) -> None:
    before = counts(served.settings)
    _, sent, seconds = endless_post(served.port, pause=0)
    # Kernel buffers on both sides hold a few MB more than the service read.
    assert DRAIN_BYTES < sent < DRAIN_BYTES + 32_000_000, sent
    assert seconds < DRAIN_SECONDS, seconds
    assert counts(served.settings) == before
