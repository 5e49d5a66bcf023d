"""A throwaway PostgreSQL server for the tests and the benchmark.

    with PostgresServer.start() as pg:
        url = pg.create_database("scratch")   # postgresql+psycopg://postgres@127.0.0.1:PORT/scratch

initdb runs in a fresh temporary folder, the server listens on 127.0.0.1 at a free
port (its unix socket stays in the same folder) and everything is deleted on stop.
PostgreSQL refuses to run as root, so as root the binaries run as the `postgres` user,
which then owns the folder.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg

SERVER_USER = "postgres"


class PostgresUnavailableError(RuntimeError):
    """No PostgreSQL binaries on this machine, or the server would not start."""


def find_bindir() -> Path:
    """The folder holding initdb and pg_ctl: from pg_config, else /usr/lib/postgresql/*."""
    pg_config = shutil.which("pg_config")
    if pg_config:
        out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True)
        candidate = Path(out.stdout.strip())
        if (candidate / "initdb").is_file():
            return candidate
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    if not found:
        raise PostgresUnavailableError(
            "PostgreSQL server binaries not found; install them: apt-get install postgresql"
        )
    return found[-1].parent  # the newest major version


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class PostgresServer:
    root: Path
    port: int
    bindir: Path
    durable: bool = False  # fsync and synchronous commit on, for every launch

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    def url(self, dbname: str = "postgres") -> str:
        return f"postgresql+psycopg://{SERVER_USER}@127.0.0.1:{self.port}/{dbname}"

    def _run(self, *args: str) -> None:
        cmd = [str(self.bindir / args[0]), *args[1:]]
        if os.geteuid() == 0:
            cmd = ["runuser", "-u", SERVER_USER, "--", *cmd]
        result = subprocess.run(cmd, capture_output=True, text=True)
        if result.returncode != 0:
            raise PostgresUnavailableError(f"{args[0]} failed: {result.stderr.strip()[-2000:]}")

    @classmethod
    @contextmanager
    def start(cls, *, durable: bool = False) -> Iterator[PostgresServer]:
        """Start a server; `durable=False` turns fsync off, which tests can afford."""
        root = Path(tempfile.mkdtemp(prefix="digitlab-pg-"))
        if os.geteuid() == 0:
            shutil.chown(root, user=SERVER_USER)
        server = cls(root, free_port(), find_bindir(), durable)
        try:
            server._run("initdb", "-D", str(server.data_dir), "-U", SERVER_USER,
                        "--auth=trust", "-E", "UTF8", "--no-sync")  # fmt: skip
            server.launch()
            yield server
        finally:
            server.stop(missing_ok=True)
            shutil.rmtree(root, ignore_errors=True)

    def launch(self) -> None:
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1"
        if not self.durable:
            options += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        log = str(self.root / "server.log")
        self._run("pg_ctl", "-D", str(self.data_dir), "-o", options, "-l", log, "-w", "start")

    def stop(self, *, mode: str = "fast", missing_ok: bool = False) -> None:
        """Stop the server; mode "immediate" is a crash as far as clients can tell."""
        if not (self.data_dir / "postmaster.pid").exists():
            if missing_ok:
                return
            raise PostgresUnavailableError("the server is not running")
        self._run("pg_ctl", "-D", str(self.data_dir), "-m", mode, "-w", "stop")

    def create_database(self, name: str) -> str:
        """A new empty database; returns its SQLAlchemy URL."""
        dsn = f"host=127.0.0.1 port={self.port} user={SERVER_USER} dbname=postgres"
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)
