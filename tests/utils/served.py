"""A real service process for tests that need real sockets: `digitlab serve` (uvloop and
httptools) or plain uvicorn with another HTTP protocol, on a free port."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.message import Message
from pathlib import Path
from typing import Any

import httpx

from digitlab.config import Settings
from digitlab.store.testing_pg import free_port

SERVE = ["-m", "digitlab", "serve"]
# The same app on uvicorn's pure-Python HTTP/1.1 protocol and the standard event loop.
UVICORN_H11 = [
    "-m", "uvicorn", "--factory", "digitlab.app:app_from_environment",
    "--http", "h11", "--loop", "asyncio",
]  # fmt: skip


def wait_ready(
    port: int, process: subprocess.Popen[bytes], timeout: float = 60, log: Path | None = None
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            output = log.read_text() if log else process.communicate()[0].decode()
            raise AssertionError(output[-2000:])
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"not ready on port {port} in {timeout} s")


def start(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.Popen[bytes]:
    """`python -m digitlab ARGS`, its output in a pipe."""
    return subprocess.Popen(
        [sys.executable, "-m", "digitlab", *args],
        env=os.environ | env,
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


@dataclass(frozen=True)
class Served:
    url: str
    settings: Settings
    # The `python -m ...` process itself, for tests that signal it or read its children.
    process: subprocess.Popen[bytes] | None = field(default=None, compare=False)

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])


@contextmanager
def serving(
    settings: Settings, cwd: Path, command: list[str] = SERVE, **env: str
) -> Iterator[Served]:
    """The service over `settings`' model folder and database, with more DIGITLAB_
    variables in `env`; yields it and stops it at the end. Its output goes to
    a file, not a pipe: a pipe nobody reads would stall it once the access log fills it."""
    port = free_port()
    variables = {
        "DIGITLAB_MODEL_DIR": str(settings.model_dir),
        "DIGITLAB_DATABASE_URL": settings.database_url,
        **env,
    }
    log = cwd / f"serve-{port}.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [sys.executable, *command, "--port", str(port)],
            env=os.environ | variables,
            cwd=cwd,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_ready(port, process, log=log)
        yield Served(f"http://127.0.0.1:{port}", settings, process)
    finally:
        process.terminate()
        process.wait(timeout=30)


@dataclass(frozen=True)
class Answer:
    status: int
    headers: Message
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def urllib_post(url: str, data: bytes | Iterable[bytes], headers: dict[str, str]) -> Answer:
    """POST through urllib, which sends `Connection: close` and reads the answer only
    after it has sent the whole body; an error status is an answer, not an exception."""
    request = urllib.request.Request(url, data=data, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return Answer(response.status, response.headers, response.read())
    except urllib.error.HTTPError as exc:
        with exc:
            return Answer(exc.code, exc.headers, exc.read())


def json_body(size: int) -> bytes:
    """`{"image": "AAA..."}`, exactly `size` bytes."""
    head, tail = b'{"image": "', b'"}'
    return head + b"A" * (size - len(head) - len(tail)) + tail


def chunks(data: bytes, size: int = 8192) -> Iterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]
