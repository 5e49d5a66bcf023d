"""`digitlab serve --workers 2` over a real PostgreSQL: two worker processes share the
port under the command's own process, each answers a share of many concurrent requests,
every answer is a stored row, and each worker's /metrics counts its own requests. A bad
number of workers, or a worker that cannot start, stops the command with one line."""

from __future__ import annotations

import http.client
import json
import os
import re
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from digitlab.data import Split
from digitlab.store.testing_pg import PostgresServer, free_port
from tests.api.conftest import b64, counts, png, served_on_postgres
from tests.utils import procfs
from tests.utils.served import SERVE, Served

CLIENTS, EACH = 16, 20
PREDICT_200 = re.compile(
    r'^digitlab_http_requests_total\{(?=.*route="/api/v1/predict")(?=.*status="200").*\} (\S+)$',
    re.MULTILINE,
)


def predict_on_new_connections(port: int, bodies: list[bytes], statuses: list[int]) -> None:
    """One request per connection, so that the kernel hands each to whichever worker
    accepts first (a keep-alive connection stays with one worker)."""
    for body in bodies:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        conn.request("POST", "/api/v1/predict", body, {"Content-Type": "application/json"})
        statuses.append(conn.getresponse().status)
        conn.close()


def connection_to_each(served: Served, pids: list[int]) -> dict[int, http.client.HTTPConnection]:
    """A keep-alive connection held by each worker in `pids`: connect until every worker
    has accepted one (which worker accepts is the kernel's choice)."""
    held: dict[int, http.client.HTTPConnection] = {}
    for _ in range(200):
        conn = http.client.HTTPConnection("127.0.0.1", served.port, timeout=30)
        conn.request("GET", "/healthz")
        conn.getresponse().read()
        assert conn.sock is not None
        pid = procfs.accepted_by(pids, served.port, conn.sock)
        if pid is not None and pid not in held:
            held[pid] = conn
            if len(held) == len(pids):
                return held
        else:
            conn.close()
    raise AssertionError(f"connections reached only workers {sorted(held)} of {pids}")


def predictions_answered(conn: http.client.HTTPConnection) -> int:
    """The 200s to POST /api/v1/predict in the /metrics of the process behind `conn`."""
    conn.request("GET", "/metrics")
    text = conn.getresponse().read().decode()
    return sum(int(float(value)) for value in PREDICT_200.findall(text))


def test_two_workers_share_the_load_and_store_every_answer(
    pg_server: PostgresServer, linear_models: Path, tmp_path: Path, mnist_test: Split
) -> None:
    bodies = [
        json.dumps({"image": b64(png(image))}).encode()
        for image in mnist_test.images[: CLIENTS * EACH]
    ]
    command = [*SERVE, "--workers", "2"]
    with served_on_postgres(pg_server, linear_models, tmp_path, command) as served:
        assert served.process is not None
        pids = procfs.workers(served.process.pid, served.port)
        assert len(pids) == 2, f"processes under {served.process.pid} on the port: {pids}"

        statuses: list[list[int]] = [[] for _ in range(CLIENTS)]
        threads = [
            threading.Thread(
                target=predict_on_new_connections,
                args=(served.port, bodies[k * EACH : (k + 1) * EACH], statuses[k]),
            )
            for k in range(CLIENTS)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        answered = [s for per_client in statuses for s in per_client]
        assert answered == [200] * CLIENTS * EACH

        per_worker = {
            pid: predictions_answered(conn)
            for pid, conn in connection_to_each(served, pids).items()
        }
        # Metrics are per process: each worker counts only what it answered itself.
        assert sum(per_worker.values()) == CLIENTS * EACH, per_worker
        assert all(n > 0 for n in per_worker.values()), per_worker
    assert counts(served.settings) == (CLIENTS * EACH, CLIENTS * EACH)


def serve(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *SERVE, *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("args", "variables", "message"),
    [
        (["--workers", "0"], {}, "error: --workers must be 1 or more, not 0"),
        (["--workers", "-3"], {}, "error: --workers must be 1 or more, not -3"),
        ([], {"DIGITLAB_WORKERS": "0"}, "error: DIGITLAB_WORKERS must be 1 or more, not 0"),
    ],
)
def test_bad_number_of_workers_is_one_line(
    args: list[str], variables: dict[str, str], message: str, tmp_path: Path
) -> None:
    done = serve(args, os.environ | variables, tmp_path)
    assert done.returncode == 2
    assert done.stderr.strip() == message and done.stdout == ""


def test_a_worker_that_cannot_start_stops_the_command(tmp_path: Path) -> None:
    """Not restarted again and again: one line per worker with the reason, exit 1."""
    env = os.environ | {"DIGITLAB_DATABASE_URL": "nosuchdb://x"}
    done = serve(["--workers", "2", "--port", str(free_port())], env, tmp_path)
    assert done.returncode == 1, done.stderr[-2000:]
    assert "error: unsupported database 'nosuchdb'" in done.stderr
    assert "error: a worker process failed to start" in done.stderr
