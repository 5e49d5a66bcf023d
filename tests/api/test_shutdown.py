"""SIGTERM (what Kubernetes sends after the preStop sleep) stops `digitlab serve`
gracefully, with one worker and with two, over real sockets and a real PostgreSQL: the
port stops accepting at once, a request in flight (an upload whose body is still
arriving) still gets its 200 and is stored, and the process exits 0; one that never
finishes holds the exit back only DIGITLAB_SHUTDOWN_SECONDS."""

from __future__ import annotations

import json
import signal
import socket
import time
from pathlib import Path

import pytest

from digitlab.data import Split
from digitlab.store.testing_pg import PostgresServer
from tests.api.conftest import counts, png, served_on_postgres
from tests.utils import procfs
from tests.utils.served import SERVE, Served

BOUNDARY = "digitlab-test-boundary"


def upload_request(image: bytes) -> tuple[bytes, bytes]:
    """A multipart `POST /api/v1/predict`: (head with content-length, body)."""
    body = (
        (
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="d.png"\r\n'
            "Content-Type: image/png\r\n\r\n"
        ).encode()
        + image
        + f"\r\n--{BOUNDARY}--\r\n".encode()
    )
    head = (
        "POST /api/v1/predict HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Content-Type: multipart/form-data; boundary={BOUNDARY}\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    return head, body


def start_upload(served: Served, head: bytes, body: bytes) -> socket.socket:
    """Send the head and half the body, and wait until a worker has accepted it."""
    assert served.process is not None
    client = socket.create_connection(("127.0.0.1", served.port), timeout=30)
    client.sendall(head + body[: len(body) // 2])
    pids = procfs.workers(served.process.pid, served.port) or [served.process.pid]
    deadline = time.monotonic() + 10
    while procfs.accepted_by(pids, served.port, client) is None:
        assert time.monotonic() < deadline, "no worker accepted the upload"
        time.sleep(0.05)
    time.sleep(0.2)  # and has read the head: the request is in flight
    return client


def refused(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    except ConnectionRefusedError:
        return True
    return False


def read_answer(client: socket.socket) -> tuple[int, bytes, dict[str, object]]:
    """Status, head and JSON body of one answer."""
    data = b""
    while chunk := client.recv(65536):
        data += chunk
        head, _, rest = data.partition(b"\r\n\r\n")
        length = next(
            (int(line.split(b":")[1]) for line in head.split(b"\r\n")
             if line.lower().startswith(b"content-length:")),
            None,
        )  # fmt: skip
        if length is not None and len(rest) >= length:
            return int(head.split()[1]), head.lower(), json.loads(rest[:length])
    raise AssertionError(f"the connection closed before a whole answer: {data!r}")


@pytest.mark.parametrize("workers", [1, 2])
def test_sigterm_lets_the_request_in_flight_finish(
    workers: int, pg_server: PostgresServer, linear_models: Path, tmp_path: Path, mnist_test: Split
) -> None:
    head, body = upload_request(png(mnist_test.images[0]))
    command = [*SERVE, "--workers", str(workers)]
    with served_on_postgres(pg_server, linear_models, tmp_path, command) as served:
        assert served.process is not None
        client = start_upload(served, head, body)
        served.process.send_signal(signal.SIGTERM)
        sent = time.monotonic()
        # New connections are refused while the upload is still arriving.
        while not refused(served.port):
            assert time.monotonic() - sent < 10, "the port still accepts after SIGTERM"
            time.sleep(0.05)
        assert served.process.poll() is None, "exited with a request in flight"
        client.sendall(body[len(body) // 2 :])
        status, head, answer = read_answer(client)
        client.close()
        assert status == 200, answer
        assert b"\r\nconnection: close" in head  # the client is told not to send more
        assert answer["prediction"] == int(mnist_test.labels[0])
        assert served.process.wait(timeout=15) == 0
        assert time.monotonic() - sent < 15  # well within DIGITLAB_SHUTDOWN_SECONDS (20)
        assert refused(served.port)
    assert counts(served.settings) == (1, 1)


@pytest.mark.parametrize("workers", [1, 2])
def test_a_request_that_never_finishes_delays_exit_only_the_bound(
    workers: int, pg_server: PostgresServer, linear_models: Path, tmp_path: Path, mnist_test: Split
) -> None:
    head, body = upload_request(png(mnist_test.images[0]))
    command = [*SERVE, "--workers", str(workers)]
    bound = {"DIGITLAB_SHUTDOWN_SECONDS": "2"}
    with served_on_postgres(pg_server, linear_models, tmp_path, command, **bound) as served:
        assert served.process is not None
        client = start_upload(served, head, body)  # the rest of the body never comes
        served.process.send_signal(signal.SIGTERM)
        sent = time.monotonic()
        assert served.process.wait(timeout=15) == 0
        waited = time.monotonic() - sent
        client.close()
    assert 1.5 < waited < 8, f"exited {waited:.1f} s after SIGTERM, bound 2 s"
    assert counts(served.settings) == (0, 0)
