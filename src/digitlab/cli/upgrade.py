"""`digitlab upgrade`: train the robust recipe, judge it beside the serving model with the
retrain's promotion policy, and promote it when the policy holds. `digitlab run` starts
it in the background; the Compose upgrader service and the Kubernetes upgrade Job run it
as a one-shot. Does nothing when the robust model was trained already.

digitlab upgrade [--recipe best] [--epochs N] [--dry-run] [--force] [--nice N] [--stay]
"""

from __future__ import annotations

import os
import signal
import threading
from typing import Annotated

import typer
from rich.markup import escape

from digitlab.cli.common import UsageError, console, friendly_errors, print_error


def upgrade(
    recipe: Annotated[
        str | None,
        typer.Option(help="The recipe to train; default DIGITLAB_UPGRADE_RECIPE (best)."),
    ] = None,
    epochs: Annotated[
        int | None,
        typer.Option(min=1, help="Override the epochs; default DIGITLAB_UPGRADE_EPOCHS."),
    ] = None,
    dry_run: Annotated[
        bool,
        typer.Option(help="Train one batch only (smoke test).", envvar="DIGITLAB_UPGRADE_DRY_RUN"),
    ] = False,
    force: Annotated[
        bool, typer.Option(help="Train even when a model of the recipe exists already.")
    ] = False,
    nice: Annotated[
        int, typer.Option(min=0, max=19, help="Lower this process's priority by N first.")
    ] = 0,
    stay: Annotated[
        bool,
        typer.Option(
            help="After the upgrade (whatever its outcome), stay idle until SIGTERM: a "
            "Compose service that exits makes `docker compose up --wait` fail."
        ),
    ] = False,
) -> None:
    """Train the robust model and switch to it when the promotion policy says it is better."""
    from digitlab.cli.upgrade_worker import Cancelled, run_upgrade, upgrade_needed
    from digitlab.config import get_settings
    from digitlab.ml.recipes import RECIPES
    from digitlab.registry.lifecycle import serving_version, sync_models
    from digitlab.registry.upgrade_status import describe
    from digitlab.registry.versions import RegistryError

    settings = get_settings()
    chosen = recipe or settings.upgrade_recipe
    if chosen not in RECIPES:
        raise UsageError(f"unknown recipe {chosen!r}; choose from {', '.join(RECIPES)}")
    if nice:
        os.nice(nice)
    try:
        sync_models(settings)
        if serving_version(settings) is None:
            # An error, not a quiet exit: the Kubernetes Job retries until the first
            # training Job has made a model.
            raise RegistryError(
                "no model serves yet; the upgrade replaces a serving one "
                "(`digitlab run` or `digitlab train` makes the first)"
            )
        if not force and (why_not := upgrade_needed(settings, chosen)):
            console.print(f"no upgrade: {escape(why_not)}", highlight=False)
        else:
            status = run_upgrade(
                settings,
                recipe=chosen,
                epochs=epochs if epochs is not None else settings.upgrade_epochs,
                dry_run=dry_run,
            )
            console.print(f"upgrade {status.state}: {escape(describe(status))}", highlight=False)
    except (Cancelled, KeyboardInterrupt):
        console.print("upgrade cancelled; the serving model is unchanged")
        raise typer.Exit(130) from None
    except Exception as exc:
        if not stay:
            raise
        # The status file says why too; the service's first model keeps serving.
        print_error(exc)
    if stay:
        idle()


def idle() -> None:
    """Sleep until SIGTERM or Ctrl-C, then exit 0 (as PID 1 in a container a signal without
    a handler would be ignored, and `docker stop` would wait its 10 s and kill)."""
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda signum, frame: stopped.set())
    signal.signal(signal.SIGINT, lambda signum, frame: stopped.set())
    console.print("upgrade done; idle until stopped")
    while not stopped.wait(3600):
        pass


def register(app: typer.Typer) -> None:
    app.command("upgrade")(friendly_errors(upgrade))
