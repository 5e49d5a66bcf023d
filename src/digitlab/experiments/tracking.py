"""Experiment tracking in digitlab's own database: every training run, its per-epoch
metrics, how it ended and the model version it produced.

    engine = open_store(settings)
    with recorded_run(engine, config=cfg.to_dict(), git_commit=..., libraries=...) as run:
        model = train_and_register(cfg, settings, on_epoch=run.log_epoch)
        run.succeeded(model, active=True)

`digitlab train` and `digitlab sweep` wrap their training this way (cli/training.py). No torch
here: the caller passes the git commit and library versions that the model card uses.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from types import FrameType
from typing import Any

from sqlalchemy import Engine

from digitlab.config import Settings
from digitlab.registry.publish import ensure_model
from digitlab.registry.versions import ModelVersion
from digitlab.store import db, runs


def open_store(settings: Settings) -> Engine:
    """The database runs are recorded in. The embedded SQLite file is created and brought
    up to date here, so a run on a fresh machine is never lost; PostgreSQL must already be
    migrated (the error names `digitlab db upgrade`). Called before training, so a wrong
    database fails in a second, not after minutes of training."""
    return db.open_engine(settings.database_url)


def start_run(
    engine: Engine,
    *,
    config: dict[str, Any],
    libraries: dict[str, str],
    git_commit: str | None = None,
    sweep: str | None = None,
) -> int:
    """Record a run as `running`; returns its id."""
    with db.transaction(engine) as session:
        return runs.create_run(
            session,
            recipe=str(config.get("recipe", "?")),
            dataset=str(config.get("dataset", "?")),
            seed=int(config.get("seed", 0)),
            config=config,
            libraries=libraries,
            git_commit=git_commit,
            sweep=sweep,
        )


def log_epoch(engine: Engine, run_id: int, row: dict[str, Any]) -> None:
    """One epoch, committed at once: a run that dies later keeps its curves so far."""
    with db.transaction(engine) as session:
        runs.add_epoch(session, run_id=run_id, row=row)


def finish_run(
    engine: Engine,
    run_id: int,
    *,
    status: str,
    metrics: dict[str, Any] | None = None,
    model: ModelVersion | None = None,
    active: bool = False,
    error: str | None = None,
) -> None:
    """Close the run; `model` is registered in `models` (active or not) and linked."""
    model_id = None
    if model is not None:
        model_id = ensure_model(engine, model, active=active)
    with db.transaction(engine) as session:
        runs.finish_run(
            session, run_id=run_id, status=status, metrics=metrics, model_id=model_id, error=error
        )


@dataclass
class Run:
    """A run being recorded; `recorded_run` yields it."""

    engine: Engine
    id: int
    finished: bool = False

    def log_epoch(self, row: dict[str, Any]) -> None:
        log_epoch(self.engine, self.id, row)

    def succeeded(self, model: ModelVersion, *, active: bool) -> None:
        finish_run(
            self.engine,
            self.id,
            status="succeeded",
            metrics=model.card.get("metrics", {}),
            model=model,
            active=active,
        )
        self.finished = True


@contextmanager
def recorded_run(
    engine: Engine,
    *,
    config: dict[str, Any],
    libraries: dict[str, str],
    git_commit: str | None = None,
    sweep: str | None = None,
) -> Iterator[Run]:
    """Record the run around the block: `interrupted` on Ctrl-C or SIGTERM, `failed` on
    any other exception (all re-raised), `succeeded` when the block calls `run.succeeded`."""
    run = Run(
        engine,
        start_run(engine, config=config, libraries=libraries, git_commit=git_commit, sweep=sweep),
    )
    try:
        with _terminate_as_interrupt():
            yield run
    except KeyboardInterrupt as exc:
        how = "terminated (SIGTERM)" if isinstance(exc, Terminated) else "interrupted (Ctrl-C)"
        _close_quietly(run, "interrupted", how)
        raise
    except BaseException as exc:
        _close_quietly(run, "failed", f"{type(exc).__name__}: {exc}")
        raise
    if not run.finished:
        _close_quietly(run, "failed", "the run ended without publishing a model")


class Terminated(KeyboardInterrupt):
    """SIGTERM (`kill`, `docker stop`, systemd) during a recorded run: handled as Ctrl-C
    is, so the run is closed as interrupted rather than left `running` by a silent exit."""


@contextmanager
def _terminate_as_interrupt() -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers can only be set from the main thread
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        raise Terminated

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous if previous is not None else signal.SIG_DFL)


def _close_quietly(run: Run, status: str, error: str) -> None:
    # The error that ended the run is the one to report; a database that is gone as well
    # must not replace it (the run then stays `running`, which says it never finished).
    with suppress(db.StoreError):
        finish_run(run.engine, run.id, status=status, error=error)
    run.finished = True
