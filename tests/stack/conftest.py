"""The real Compose stack on a real Docker engine, driven as the README tells users:
a clean clone of the repository, a `.env` made from `.env.example`, `docker compose build`
and `up -d --wait` under a project name of its own, and always `down -v` at the end.

When the MNIST files are on this machine (DIGITLAB_DATA_DIR or ../shared/mnist) they are
served over HTTP on the Docker bridge and handed to the trainer as DIGITLAB_MIRRORS, so
the container's real download-and-verify code runs without internet. TORCH_INDEX_URL is
passed through to the build when set."""

from __future__ import annotations

import ipaddress
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from digitlab.store.testing_pg import free_port
from tests.conftest import MNIST_DIR, ROOT

PROJECT = "digitlab-stacktest"
REPORT = ROOT / "test-artifacts" / "stack" / "report.md"


def docker_gateway() -> str:
    """The host's address on Docker's default bridge: containers reach it, the outside
    world does not. Some engines leave the gateway out of the network's IPAM config (seen
    after a restart of Docker 20.10); then it is the first address of the subnet, as the
    engine assigns it."""
    out = subprocess.run(
        ["docker", "network", "inspect", "bridge", "-f", "{{json .IPAM.Config}}"],
        capture_output=True,
        text=True,
        check=True,
    )
    config = json.loads(out.stdout)[0]
    if config.get("Gateway"):
        return str(config["Gateway"])
    return str(ipaddress.ip_network(config["Subnet"])[1])


@dataclass
class Stack:
    source: Path  # the clean clone compose runs in
    port: int  # the proxy's published port
    env: dict[str, str]  # the .env it runs with
    mirror_log: Path | None
    figures: list[str] = field(default_factory=list)
    answered: list[int] = field(default_factory=list)  # prediction ids answered 200

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def compose(self, *args: str, check: bool = True, timeout: float = 900) -> str:
        done = subprocess.run(
            ["docker", "compose", "-p", PROJECT, *args],
            cwd=self.source,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if check and done.returncode != 0:
            logs = ""
            if args[0] in ("up", "run"):  # a service that failed says why only in its log
                logs = self.compose("logs", "--no-color", "--tail=60", check=False, timeout=60)
            raise AssertionError(
                f"docker compose {' '.join(args)}:\n{done.stdout}\n{done.stderr}\n{logs}"
            )
        return done.stdout + done.stderr

    def timed(self, what: str, *args: str) -> str:
        start = time.perf_counter()
        out = self.compose(*args)
        self.note(f"{what}: {time.perf_counter() - start:.1f} s")
        return out

    def note(self, line: str) -> None:
        print(line)
        self.figures.append(line)

    def psql(self, sql: str) -> list[str]:
        user, name = self.env["POSTGRES_USER"], self.env["POSTGRES_DB"]
        out = self.compose("exec", "-T", "db", "psql", "-U", user, "-d", name, "-Atc", sql)
        return out.splitlines()

    def stored_prediction_ids(self) -> set[int]:
        return {int(x) for x in self.psql("SELECT id FROM predictions")}

    def replicas(self) -> list[str]:
        return self.compose("ps", "-q", "api").split()

    def in_replica(self, index: int, path: str) -> str:
        """GET `path` from inside api replica `index` (1-based), where /metrics is meant
        to be scraped."""
        code = f"import urllib.request; print(urllib.request.urlopen('http://127.0.0.1:8000{path}').read().decode())"
        return self.compose("exec", "-T", "--index", str(index), "api", "python", "-c", code)

    def predict_count(self, index: int) -> int:
        """POST /api/v1/predict answered 200 by replica `index`, from its own metrics."""
        metrics = self.in_replica(index, "/metrics")
        for line in metrics.splitlines():
            labels = ('route="/api/v1/predict"', 'method="POST"', 'status="200"')
            if line.startswith("digitlab_http_requests_total{") and all(x in line for x in labels):
                return int(float(line.rsplit(" ", 1)[1]))
        return 0

    def get(self, path: str, token: str | None = None) -> tuple[int, bytes, str]:
        """GET through the proxy (redirects followed); with `token` as a bearer token."""
        request = urllib.request.Request(self.base + path)
        if token:
            request.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(request, timeout=60) as resp:
                return resp.status, resp.read(), resp.headers.get("content-type", "")
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read(), exc.headers.get("content-type", "")

    def mirror_downloads(self) -> int:
        """Files the trainer fetched from the local mirror (200 answers in its log)."""
        if self.mirror_log is None:
            return 0
        return len(re.findall(r'"GET /\S+\.gz HTTP/1\.\d" 200', self.mirror_log.read_text()))


def _write_env(source: Path, port: int, mirror: str | None) -> dict[str, str]:
    env = {}
    for line in (source / ".env.example").read_text().splitlines():
        if line and not line.startswith("#") and "=" in line:
            key, value = line.split("=", 1)
            env[key] = value
    env |= {
        "POSTGRES_PASSWORD": secrets.token_urlsafe(16),
        "DIGITLAB_ADMIN_TOKEN": secrets.token_urlsafe(16),
        "DIGITLAB_VIEWER_TOKEN": secrets.token_urlsafe(16),
        "DIGITLAB_PORT": str(port),
        # The load tests send thousands of predictions from one address without a token;
        # the limit itself is tested on a served process (tests/api/test_hostile_uploads.py).
        "DIGITLAB_ANONYMOUS_PREDICTIONS_PER_MINUTE": "0",
    }
    # The upgrade service's switch, quickly: the first model is `plain` (shifts only) and
    # the upgrade trains `fast` (robust, as good on MNIST test), not `best` (~7 min).
    env["DIGITLAB_RECIPE"] = "plain"
    env["DIGITLAB_UPGRADE_RECIPE"] = "fast"
    if mirror:
        env["DIGITLAB_MIRRORS"] = json.dumps([mirror])
    if os.environ.get("TORCH_INDEX_URL"):
        env["TORCH_INDEX_URL"] = os.environ["TORCH_INDEX_URL"]
    (source / ".env").write_text("".join(f"{k}={v}\n" for k, v in env.items()))
    return env


@pytest.fixture(scope="package")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    if (
        shutil.which("docker") is None
        or subprocess.run(["docker", "info"], capture_output=True).returncode
    ):
        pytest.fail(
            "no Docker engine: install and start one"
            " (in this workspace: ../shared/containers/standins.sh)"
        )
    work = Path(tempfile.mkdtemp(prefix="digitlab-stack-"))
    source = work / "digitlab"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(source)], check=True)
    mirror, server, mirror_log = None, None, None
    if (MNIST_DIR / "train-images-idx3-ubyte.gz").is_file():
        gateway, mirror_port = docker_gateway(), free_port()
        mirror, mirror_log = f"http://{gateway}:{mirror_port}/", work / "mirror.log"
        with mirror_log.open("w") as log:
            server = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "http.server",
                    str(mirror_port),
                    "--bind",
                    gateway,
                    "--directory",
                    str(MNIST_DIR),
                ],
                stdout=log,
                stderr=log,
            )
    stack = Stack(source, free_port(), {}, mirror_log)
    stack.env = _write_env(source, stack.port, mirror)
    try:
        yield stack
    finally:
        stack.compose("down", "-v", "--remove-orphans", check=False, timeout=300)
        if server is not None:
            server.terminate()
            server.wait()
        shutil.rmtree(work, ignore_errors=True)
        REPORT.parent.mkdir(parents=True, exist_ok=True)
        REPORT.write_text("".join(f"- {line}\n" for line in stack.figures))
        print("\n".join(["", "stack figures:", *stack.figures]))
