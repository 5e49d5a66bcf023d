"""`digitlab serve`: the prediction service on the configured database with the current
model (uvicorn: in this process, or in N worker processes sharing the port).

digitlab serve [--host 127.0.0.1] [--port 8000] [--workers 1]
"""

from __future__ import annotations

import importlib.util
import os
import signal
from types import FrameType
from typing import Annotated, Any, NoReturn

import typer

from digitlab.cli.common import UsageError, console, friendly_errors
from digitlab.config import Settings, get_settings


def _exit_zero(signum: int, frame: FrameType | None) -> NoReturn:
    raise SystemExit(0)


def serve_forever(settings: Settings, *, log_level: str = "info") -> None:
    """Run the service until SIGTERM or Ctrl-C; uvloop and httptools when installed.
    On either, it stops accepting connections, lets requests in flight finish (at most
    `settings.shutdown_seconds`) and returns. With `settings.workers` > 1 each worker
    reads its settings from the environment, so `settings` must be get_settings()'s."""
    import uvicorn

    from digitlab.api import server_limits
    from digitlab.cli.workers import WORKER_APP, build_app, run_workers

    if settings.workers < 1:
        raise UsageError(f"DIGITLAB_WORKERS must be 1 or more, not {settings.workers}")
    if settings.shutdown_seconds < 0:
        raise UsageError(
            f"DIGITLAB_SHUTDOWN_SECONDS must be 0 or more, not {settings.shutdown_seconds}"
        )
    fast = importlib.util.find_spec("uvloop") and importlib.util.find_spec("httptools")
    options: dict[str, Any] = {
        "host": settings.host,
        "port": settings.port,
        "log_level": log_level,
        "loop": "uvloop" if fast else "auto",
        # httptools with a bound on the size and time of a request's head; without it,
        # h11 with the same bound on the size (server_limits.py).
        "http": server_limits.PROTOCOL if fast else "auto",
        "h11_max_incomplete_event_size": server_limits.MAX_HEAD_BYTES,
        "timeout_graceful_shutdown": settings.shutdown_seconds,
        # X-Forwarded-For/-Proto only from the deployment's proxy: uvicorn's default
        # believes any local process, which let a direct client name its own address.
        # The options reach the worker processes too (uvicorn.Config below).
        **proxy_options(settings),
    }
    # After a graceful shutdown uvicorn raises the signal again with the handler it found
    # in place; the default one would end the process with "killed by SIGTERM", not 0.
    signal.signal(signal.SIGTERM, _exit_zero)
    where = f"http://{settings.host}:{settings.port}"
    if settings.workers == 1:
        app = build_app(settings)
        console.print(f"serving on {where} (API docs at /docs); Ctrl-C stops")
        uvicorn.run(app, **options)
    else:
        console.print(
            f"serving on {where} with {settings.workers} worker processes "
            "(API docs at /docs); Ctrl-C stops"
        )
        config = uvicorn.Config(WORKER_APP, factory=True, workers=settings.workers, **options)
        run_workers(config)


def proxy_options(settings: Settings) -> dict[str, Any]:
    """uvicorn's proxy options: trust `settings.forwarded_allow_ips`, and no one when empty."""
    trusted = settings.forwarded_allow_ips.strip()
    return {"proxy_headers": bool(trusted), "forwarded_allow_ips": trusted or None}


def serve(
    host: Annotated[str | None, typer.Option(help="Address to listen on.")] = None,
    port: Annotated[int | None, typer.Option(min=1, max=65535, help="Port.")] = None,
    workers: Annotated[
        int | None,
        typer.Option(help="Worker processes sharing the port (default 1: this process)."),
    ] = None,
) -> None:
    """Start the prediction service (HTTP API, docs at /docs)."""
    if workers is not None and workers < 1:
        raise UsageError(f"--workers must be 1 or more, not {workers}")
    # Through the environment: worker processes build their settings from it.
    changes = {"HOST": host, "PORT": port, "WORKERS": workers}
    os.environ.update({f"DIGITLAB_{k}": str(v) for k, v in changes.items() if v is not None})
    serve_forever(get_settings())


def register(app: typer.Typer) -> None:
    app.command()(friendly_errors(serve))
