"""A bare `digitlab serve` (no proxy in front) bounds what a client can hold with raw
sockets: an 8 MB header is refused, headers and bodies trickled in a few bytes a second
are cut off with a 408 and their connections closed, and nothing is stored."""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from digitlab.api.server_limits import HEAD_SECONDS, MAX_HEAD_BYTES
from tests.api.conftest import counts, png, ready_settings
from tests.api.test_hostile_uploads import rss_mb
from tests.utils.served import Served, serving

BODY_SECONDS = 2.0
SMALL = png(np.full((28, 28), 200, dtype=np.uint8))


@pytest.fixture(scope="module")
def served(linear_models: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    folder = tmp_path_factory.mktemp("server-limits")
    settings = ready_settings(folder, f"sqlite:///{folder / 'store.db'}", linear_models)
    with serving(settings, folder, DIGITLAB_BODY_READ_SECONDS=str(BODY_SECONDS)) as served:
        yield served


def connect(served: Served) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", served.port), timeout=5)
    sock.setblocking(False)
    return sock


def read_answer(sock: socket.socket) -> bytes | None:
    """What the server has sent so far, ending in b"" once it closed; None while open."""
    received = b""
    while True:
        try:
            chunk = sock.recv(65536)
        except BlockingIOError:
            return received or None
        except ConnectionResetError:
            return received
        if not chunk:
            return received
        received += chunk


def trickle(
    socks: list[socket.socket], byte: bytes, limit: float
) -> tuple[dict[int, bytes], float]:
    """Send `byte` on each socket ten times a second until the server has answered or
    closed them all, or `limit` seconds pass; their answers, and the seconds it took."""
    start = time.monotonic()
    answers: dict[int, bytes] = {}
    while len(answers) < len(socks) and time.monotonic() - start < limit:
        for k, sock in enumerate(socks):
            if k in answers:
                continue
            with contextlib.suppress(OSError):
                sock.send(byte)
            answer = read_answer(sock)
            if answer is not None:
                answers[k] = answer
        time.sleep(0.1)
    elapsed = time.monotonic() - start
    for sock in socks:
        sock.close()
    return answers, elapsed


def test_an_8_mb_header_is_refused(served: Served) -> None:
    assert served.process is not None
    before = rss_mb(served.process.pid)
    sock = socket.create_connection(("127.0.0.1", served.port), timeout=10)
    head = b"GET /readyz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 8_000_000 + b"\r\n\r\n"
    start = time.monotonic()
    with contextlib.suppress(OSError):  # the server may close it while the header arrives
        sock.sendall(head)
    try:
        answer = sock.recv(4096)
    except OSError:
        answer = b""
    sock.close()
    assert time.monotonic() - start < 10
    # Refused (431, or a reset that threw it away), never answered as a request.
    assert answer == b"" or answer.startswith(b"HTTP/1.1 431 "), answer[:200]
    if answer:
        assert b'"detail": "the request\'s headers are over the 32,768-byte limit"' in answer
    assert rss_mb(served.process.pid) - before < 10
    assert httpx.get(f"{served.url}/readyz").status_code == 200


def test_headers_under_the_limit_are_read(served: Served) -> None:
    padding = "a" * (MAX_HEAD_BYTES - 2048)
    answer = httpx.get(f"{served.url}/readyz", headers={"X-Padding": padding})
    assert answer.status_code == 200
    # And a body far larger than the head's limit, in one go, is not mistaken for a head.
    body = {"file": ("d.png", SMALL + b"\0" * 200_000)}
    assert httpx.post(f"{served.url}/api/v1/predict", files=body).status_code == 200


def test_50_bodies_trickled_at_10_bytes_a_second_are_cut_off(served: Served) -> None:
    before = counts(served.settings)
    head = (
        b"POST /api/v1/predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: 100000\r\n\r\n"
    )
    socks = [connect(served) for _ in range(50)]
    for sock in socks:
        sock.sendall(head + b'{"image": "')
    answers, elapsed = trickle(socks, b"A", BODY_SECONDS + 8)
    assert len(answers) == len(socks), f"{len(socks) - len(answers)} still open after {elapsed} s"
    assert elapsed < BODY_SECONDS + 5
    for answer in answers.values():
        assert answer.startswith(b"HTTP/1.1 408 "), answer[:200]
        assert b"did not arrive within 2 s" in answer
    assert counts(served.settings) == before
    assert httpx.post(f"{served.url}/api/v1/predict", files={"file": ("d.png", SMALL)}).is_success


def test_headers_trickled_in_are_cut_off(served: Served) -> None:
    socks = [connect(served) for _ in range(10)]
    for sock in socks:
        sock.sendall(b"GET /")
    # A request line that never ends.
    answers, elapsed = trickle(socks, b"a", HEAD_SECONDS + 8)
    assert len(answers) == len(socks), f"{len(socks) - len(answers)} still open after {elapsed} s"
    assert HEAD_SECONDS - 1 < elapsed < HEAD_SECONDS + 5
    for answer in answers.values():
        assert answer == b"" or answer.startswith(b"HTTP/1.1 408 "), answer[:200]
