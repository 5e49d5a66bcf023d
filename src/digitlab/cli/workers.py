"""Several uvicorn worker processes on one port, for `digitlab serve --workers N`.

uvicorn starts each worker as a fresh interpreter that imports `worker_app` by name and
calls it, so a worker builds its settings from the environment, never from the parent's
objects: `digitlab serve` puts its command-line overrides there first.
"""

from __future__ import annotations

import gc
import sys

import typer
import uvicorn
from fastapi import FastAPI
from uvicorn.config import STARTUP_FAILURE
from uvicorn.supervisors import Multiprocess

from digitlab.cli.common import friendly_errors, print_error
from digitlab.config import Settings, get_settings

WORKER_APP = f"{__name__}:worker_app"


def build_app(settings: Settings) -> FastAPI:
    """The app, with everything loaded so far frozen out of the collector's way."""
    from digitlab.api.server_limits import return_freed_memory
    from digitlab.app import create_app

    return_freed_memory()  # a large picture's memory goes back once it is decoded
    app = create_app(settings)
    # Everything loaded so far (modules, the model, the app) lives as long as the
    # process. Frozen, the collector stops scanning it: a full collection over it took
    # about 100 ms every few seconds under load, a pause every request in flight waited.
    gc.collect()
    gc.freeze()
    return app


def worker_app() -> FastAPI:
    """One worker's app. A known failure (a schema behind, a bad setting) is one line
    and uvicorn's start-up failure exit code, which stops the parent instead of having it
    start the worker again and again."""
    try:
        return friendly_errors(lambda: build_app(get_settings()))()
    except typer.Exit:
        sys.exit(STARTUP_FAILURE)


class Workers(Multiprocess):
    """uvicorn's supervisor, except that on shutdown the parent closes its own copy of
    the listening socket before it signals the workers: once they close theirs the port
    refuses new connections, instead of queueing them unanswered until the parent exits."""

    def terminate_all(self) -> None:
        for sock in self.sockets:
            sock.close()
        super().terminate_all()


def run_workers(config: uvicorn.Config) -> None:
    """Run `config.workers` workers of WORKER_APP until SIGTERM or Ctrl-C (each finishes
    its requests in flight within `config.timeout_graceful_shutdown`); exit 1 when a
    worker failed to start."""
    supervisor = Workers(config, sockets=[config.bind_socket()])
    supervisor.run()
    if any(p.exitcode == STARTUP_FAILURE for p in supervisor.processes):
        print_error("a worker process failed to start (its reason is above); stopped")
        raise typer.Exit(1)
