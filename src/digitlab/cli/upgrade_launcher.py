"""The upgrade beside the service, for `digitlab run`: `digitlab upgrade` in a process of
its own, at a lower priority (`nice`), so that training neither holds the service's GIL
nor takes its CPU first; a thread of the service follows the status file and draws a
progress bar, and says how it ended. A trainer that dies without a word (killed, out of
memory) is reported as failed here, with the first model still serving."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

from digitlab.config import Settings
from digitlab.registry.lifecycle import serving_version
from digitlab.registry.upgrade_status import UpgradeStatus, describe, read_status, write_status

NICENESS = 10  # below the service, which keeps answering while the model trains
POLL_SECONDS = 0.5


def gpu_available() -> bool:
    """A CUDA device torch can use (torch is loaded only here, where training follows)."""
    try:
        from digitlab.ml.train import pick_device
    except ImportError:  # a serving install: no torch
        return False
    return pick_device().type == "cuda"


def first_config(settings: Settings, upgrade: bool) -> Any:
    """What `digitlab run` trains when no model exists: the quick `fast` recipe, which
    answers within two minutes on 2 cores; on a GPU with the upgrade on, the robust
    recipe at once (it trains there in about as long), and then no upgrade is needed."""
    from digitlab.ml.recipes import get_recipe

    if upgrade and gpu_available():
        cfg = get_recipe(settings.upgrade_recipe)
        return (
            cfg if settings.upgrade_epochs is None else cfg.replace(epochs=settings.upgrade_epochs)
        )
    return get_recipe("fast")


class BackgroundUpgrade:
    """`start()` launches the trainer and the progress bar; `stop()` cancels the trainer
    if it is still at work (SIGTERM: it writes `cancelled` itself) and waits for both."""

    def __init__(self, settings: Settings, console: Console) -> None:
        self.settings = settings
        self.console = console
        self.path = settings.upgrade_status_file
        self.log = self.path.with_suffix(".log")
        self.process: subprocess.Popen[bytes] | None = None
        self.final: UpgradeStatus | None = None
        self._thread = threading.Thread(target=self._follow, name="upgrade-follow", daemon=True)
        self._progress = Progress(
            TextColumn("upgrade: {task.description}"),
            BarColumn(),
            TextColumn("{task.percentage:>3.0f}%"),
            TimeRemainingColumn(),
            console=console,
            transient=True,
            refresh_per_second=2,  # the service shares the CPU: draw sparingly
        )

    def start(self) -> None:
        serving = serving_version(self.settings)
        recipe = self.settings.upgrade_recipe
        # Written before the trainer starts, so the page says at once what is coming.
        write_status(self.path, UpgradeStatus(state="starting", recipe=recipe, serving=serving))
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "digitlab", "upgrade", "--nice", str(NICENESS)],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=os.environ,
            )
        self.console.print(
            f"upgrade: training `{recipe}` in the background (process {self.process.pid}, "
            f"log {self.log}); {serving} serves meanwhile",
            highlight=False,
        )
        # Started here, before the service configures its logging, so that the service's
        # log lines go above the bar rather than through it.
        self._progress.start()
        self._thread.start()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        self._progress.stop()

    def _follow(self) -> None:
        assert self.process is not None
        task = self._progress.add_task("starting", total=1.0)
        shown_epoch = 0
        while (code := self.process.poll()) is None:
            status = read_status(self.path)
            if status is not None and status.state == "training":
                self._progress.update(
                    task,
                    completed=status.fraction,
                    description=f"`{status.recipe}` epoch {status.epoch}/{status.epochs}",
                )
                if status.epoch != shown_epoch:
                    shown_epoch = status.epoch
                    self._progress.console.print(f"upgrade: {escape(describe(status))}")
            elif status is not None:
                self._progress.update(task, description=status.state)
            time.sleep(POLL_SECONDS)
        self._progress.stop()
        status = read_status(self.path)
        if status is None or status.active:
            # The trainer could not say it: it was killed, or died before writing.
            how = f"killed by signal {-code}" if code < 0 else f"exit status {code}"
            serving = serving_version(self.settings)
            status = UpgradeStatus(
                state="failed",
                recipe=self.settings.upgrade_recipe,
                serving=serving,
                epoch=status.epoch if status else 0,
                epochs=status.epochs if status else 0,
                fraction=status.fraction if status else 0.0,
                started_at=status.started_at if status else "",
                reason=f"the upgrade's trainer stopped ({how})"
                + (f" in epoch {status.epoch}/{status.epochs}" if status and status.epochs else "")
                + f"; {serving} keeps serving (log: {self.log})",
            )
            write_status(self.path, status)
        self.final = status
        colour = "green" if status.state == "promoted" else "yellow"
        self.console.print(
            f"[{colour}]upgrade {status.state}:[/{colour}] {escape(describe(status))}"
        )
