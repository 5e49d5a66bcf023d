"""`digitlab serve`: the prediction service on the configured database with the current
model (uvicorn, one process).

digitlab serve [--host 127.0.0.1] [--port 8000]
"""

from __future__ import annotations

import gc
import importlib.util
from typing import Annotated

import typer

from digitlab.cli_common import console, friendly_errors
from digitlab.config import Settings, get_settings


def serve_forever(settings: Settings, *, log_level: str = "info") -> None:
    """Run the service until interrupted; uvloop and httptools when installed."""
    import uvicorn

    from digitlab.api.app import create_app

    app = create_app(settings)
    # Everything loaded so far (modules, the model, the app) lives as long as the
    # process. Frozen, the collector stops scanning it: a full collection over it took
    # about 100 ms every few seconds under load, a pause every request in flight waited.
    gc.collect()
    gc.freeze()
    console.print(
        f"serving on http://{settings.host}:{settings.port} (API docs at /docs); Ctrl-C stops"
    )
    fast = importlib.util.find_spec("uvloop") and importlib.util.find_spec("httptools")
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        log_level=log_level,
        loop="uvloop" if fast else "auto",
        http="httptools" if fast else "auto",
    )


def serve(
    host: Annotated[str | None, typer.Option(help="Address to listen on.")] = None,
    port: Annotated[int | None, typer.Option(min=1, max=65535, help="Port.")] = None,
) -> None:
    """Start the prediction service (HTTP API, docs at /docs)."""
    settings = get_settings()
    changes = {k: v for k, v in {"host": host, "port": port}.items() if v is not None}
    serve_forever(settings.model_copy(update=changes))


def register(app: typer.Typer) -> None:
    app.command()(friendly_errors(serve))
