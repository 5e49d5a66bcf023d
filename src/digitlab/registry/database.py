"""The model registry in PostgreSQL, for processes that share no model folder (replicas on
several machines): the database holds each published version's files and says which
one is active; each process copies them into its own model folder, which becomes a
cache, and points its CURRENT at the active one. Everything that reads models
(the predictor, the pages, the CLI) then works on that folder as on the embedded setup.

`Watcher` keeps a serving process in step: it LISTENs for promotions and syncs at once,
and polls as well (after every reconnect and every `poll_seconds`), so a notification
lost while disconnected is made up for.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import threading
import time
from collections.abc import Callable
from pathlib import Path

import psycopg
from sqlalchemy import Engine

from digitlab.registry import versions as registry
from digitlab.registry.versions import ModelVersion, RegistryError
from digitlab.store import artifacts
from digitlab.store.db import StoreError

log = logging.getLogger("digitlab.registry")
WATCHER_NAME = "digitlab-model-watcher"  # its connection's name in pg_stat_activity


def fetch_into(engine: Engine, model_dir: Path, version: str) -> ModelVersion:
    """`version` in `model_dir`, copied there from the database when missing. Files whose
    SHA-256 is not the registered one are refused (RegistryError) and not written."""
    if (model_dir / version / registry.CARD_FILE).is_file():
        return registry.load_version(model_dir, version)
    if not registry.VERSION_RE.match(version):
        raise RegistryError(f"{version!r} is not a valid model version id")
    artifact = artifacts.fetch(engine, version)
    if artifact is None:
        raise RegistryError(
            f"no model version {version!r} in the database or in {model_dir}",
            public=f"no model version {version!r} in the database or the model folder",
        )
    actual = hashlib.sha256(artifact.onnx).hexdigest()
    expected = {artifact.sha256, artifact.registered_sha256, artifact.card["onnx"]["sha256"]}
    if expected != {actual}:
        raise RegistryError(
            f"model version {version}: the ONNX file in the database has SHA-256 "
            f"{actual[:12]}..., registered as {artifact.registered_sha256[:12]}...; "
            "it was changed or damaged and is refused"
        )
    staging = registry.staging_dir(model_dir)
    (staging / registry.ONNX_FILE).write_bytes(artifact.onnx)
    (staging / registry.CARD_FILE).write_text(json.dumps(artifact.card, indent=2))
    try:
        return registry.publish(staging, model_dir, version)
    except OSError:  # another process of this machine copied it first
        shutil.rmtree(staging, ignore_errors=True)
        return registry.load_version(model_dir, version)


def sync(engine: Engine, model_dir: Path) -> str | None:
    """Copy every version the database holds into `model_dir` and point CURRENT at the
    active one; returns it (None while none is active). A damaged version is skipped
    with a log line, and is not made current."""
    active = artifacts.active(engine)
    for version in artifacts.versions_with_artifacts(engine):
        if active is None or version != active.version:
            try:
                fetch_into(engine, model_dir, version)
            except RegistryError as exc:
                log.error("%s", exc)
    with registry.pointer_lock(model_dir):
        # Read again under the lock: a promotion on this host may have come in meanwhile.
        active = artifacts.active(engine)
        if active is None:
            return None
        fetch_into(engine, model_dir, active.version)  # RegistryError: keep the current one
        if registry.current_version(model_dir) != active.version:
            registry.set_current(model_dir, active.version)
        return active.version


def libpq_url(engine: Engine) -> str:
    """The engine's URL as libpq reads it, for a connection of our own."""
    return engine.url.set(drivername="postgresql").render_as_string(hide_password=False)


class Watcher:
    """A thread that syncs `model_dir` with the database whenever a promotion is
    announced (and every `poll_seconds`), then calls `on_change(version)`."""

    def __init__(
        self,
        engine: Engine,
        model_dir: Path,
        on_change: Callable[[str], None],
        *,
        poll_seconds: float = 30.0,
    ) -> None:
        self.engine = engine
        self.model_dir = model_dir
        self.on_change = on_change
        self.poll_seconds = poll_seconds
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="model-watcher", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def sync_now(self) -> None:
        try:
            version = sync(self.engine, self.model_dir)
        except (RegistryError, StoreError, OSError) as exc:
            log.error("model registry: %s; serving the version already loaded", exc)
            return
        except Exception as exc:  # the database went away mid-sync: the next poll retries
            log.warning("model registry: sync failed (%s); retrying", exc)
            return
        if version is not None:
            self.on_change(version)

    def _run(self) -> None:
        backoff = 0.5
        while not self._stop.is_set():
            try:
                with psycopg.connect(
                    libpq_url(self.engine),
                    autocommit=True,
                    connect_timeout=5,
                    keepalives_idle=10,  # a peer gone without a word is noticed
                    application_name=WATCHER_NAME,
                ) as conn:
                    conn.execute(f"LISTEN {artifacts.CHANNEL}")
                    backoff = 0.5
                    self._listen(conn)
            except psycopg.Error as exc:
                log.warning("model registry: listening failed (%s); reconnecting", exc)
                self._stop.wait(backoff)
                backoff = min(backoff * 2, 5.0)

    def _listen(self, conn: psycopg.Connection[tuple[object, ...]]) -> None:
        self.sync_now()  # whatever was announced while nobody listened
        synced = time.monotonic()
        while not self._stop.is_set():
            # Short waits, so that stop() is quick; a notification ends the wait at once.
            heard = any(True for _ in conn.notifies(timeout=1.0, stop_after=1))
            if heard or time.monotonic() - synced >= self.poll_seconds:
                self.sync_now()
                synced = time.monotonic()
