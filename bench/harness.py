"""What the serving benchmarks share (bench/serve.py, bench/soak.py): the request bodies,
the raw-socket HTTP/1.1 client, starting a service the way a user does, a fresh
database on the throwaway PostgreSQL server, and counting the rows it stored.

Not run by itself; the benchmarks import it (their folder is on sys.path).
"""

from __future__ import annotations

import base64
import http.client
import io
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType
from typing import BinaryIO

from digitlab.config import get_settings
from digitlab.data import load_split
from digitlab.store import db, migrate
from digitlab.store.testing_pg import PostgresServer

SERVICE = [sys.executable, "-m", "digitlab", "serve"]
BASELINE = [sys.executable, "-m", "uvicorn", "--factory", "naive_app:app"]
HOST = "127.0.0.1"  # the only target: the service under test on this machine


def bodies(count: int) -> list[bytes]:
    """`count` MNIST test digits as `POST /api/v1/predict` takes them: base64 PNG in JSON."""
    from PIL import Image

    test = load_split("mnist", "test", get_settings(), download=False)
    out = []
    for image in test.images[:count]:
        png = io.BytesIO()
        Image.fromarray(image).save(png, format="PNG")
        out.append(json.dumps({"image": base64.b64encode(png.getvalue()).decode()}).encode())
    return out


def predict_requests(payloads: list[bytes]) -> list[bytes]:
    """Whole HTTP/1.1 requests, built beforehand: http.client spent ~0.7 ms of CPU a
    request on headers, on the same cores as the service it measures."""
    head = f"POST /api/v1/predict HTTP/1.1\r\nhost: {HOST}\r\ncontent-type: application/json\r\n"
    return [f"{head}content-length: {len(p)}\r\n\r\n".encode() + p for p in payloads]


class RawClient:
    """One keep-alive connection to the service; `send` a prebuilt request, get the
    status. Raises OSError (ConnectionError included) when the connection fails."""

    def __init__(self, port: int, *, timeout: float | None = None) -> None:
        self.sock = socket.create_connection((HOST, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.reader = self.sock.makefile("rb")

    def send(self, request: bytes) -> int:
        self.sock.sendall(request)
        return read_response(self.reader)

    def close(self) -> None:
        self.reader.close()
        self.sock.close()

    def __enter__(self) -> RawClient:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def read_response(reader: BinaryIO) -> int:
    """Read one response (the service always sends content-length); its status."""
    line = reader.readline()
    if not line:
        raise ConnectionError("the service closed the connection")
    status = int(line.split()[1])
    length = 0
    while (line := reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    reader.read(length)
    return status


def percentile(ordered: list[float], q: float) -> float:
    """The `q` quantile (0..1) of an ascending list, nearest rank below."""
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


def fresh_database(pg: PostgresServer, name: str) -> str:
    """A new database on `pg` at the current schema, as `digitlab db upgrade` leaves it."""
    url = pg.create_database(name)
    engine = db.make_engine(url)
    migrate.upgrade(engine)
    engine.dispose()
    return url


def predictions_count(url: str) -> int:
    from sqlalchemy import text

    engine = db.make_engine(url)
    with engine.connect() as conn:
        n = int(conn.execute(text("SELECT count(*) FROM predictions")).scalar_one())
    engine.dispose()
    return n


def wal_and_checkpoints(url: str) -> tuple[int, int]:
    """The server's WAL position in bytes and the checkpoints it has completed so far."""
    from sqlalchemy import text

    engine = db.make_engine(url)
    with engine.connect() as conn:
        wal = int(conn.execute(text("SELECT pg_current_wal_lsn() - '0/0'")).scalar_one())
        if int(conn.execute(text("SHOW server_version_num")).scalar_one()) >= 170000:
            query = "SELECT num_timed + num_requested FROM pg_stat_checkpointer"
        else:
            query = "SELECT checkpoints_timed + checkpoints_req FROM pg_stat_bgwriter"
        checkpoints = int(conn.execute(text(query)).scalar_one())
    engine.dispose()
    return wal, checkpoints


def start_service(cmd: list[str], url: str, port: int, log: Path) -> subprocess.Popen[bytes]:
    """Start `cmd` listening on `port` over the database at `url`; wait until ready."""
    bench = str(Path(__file__).parent)
    env = os.environ | {
        "DIGITLAB_DATABASE_URL": url,
        "DIGITLAB_PORT": str(port),
        "PYTHONPATH": os.pathsep.join(filter(None, [bench, os.environ.get("PYTHONPATH")])),
    }
    with log.open("wb") as out:
        service = subprocess.Popen([*cmd, "--port", str(port)], env=env, stdout=out, stderr=out)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and service.poll() is None:
        try:
            conn = http.client.HTTPConnection(HOST, port, timeout=1)
            conn.request("GET", "/readyz")
            if conn.getresponse().status == 200:
                return service
        except OSError:
            pass
        time.sleep(0.2)
    service.kill()
    raise SystemExit(f"{' '.join(cmd)} did not become ready:\n{log.read_text()[-2000:]}")
