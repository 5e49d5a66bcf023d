"""A rich progress bar for training: per-epoch loss, accuracy and images/s."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from digitlab.ml.recipes import TrainConfig


@contextlib.contextmanager
def training_progress(
    cfg: TrainConfig, console: Console
) -> Iterator[tuple[Callable[[dict[str, Any]], None], Callable[[int], None]]]:
    """Yields (on_epoch, on_step) callbacks for `fit` that drive the bar. The callbacks
    only touch the host (no device reads), so a GPU's queue never waits on the bar."""
    from digitlab.ml.train import pick_device  # the batch as `fit` sizes it for the device

    batch = cfg.for_device(pick_device().type).batch_size
    per_epoch = 60_000 - cfg.val_size if not cfg.dry_run else batch
    epochs = 1 if cfg.dry_run else cfg.epochs
    members = cfg.members
    progress = Progress(
        TextColumn("epoch {task.fields[epoch]}/{task.fields[epochs]}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,  # the per-epoch lines printed below stay; the bar goes
    )
    task = progress.add_task("train", total=per_epoch, epoch=1, epochs=epochs)
    steps = 0

    def on_step(n: int) -> None:
        nonlocal steps
        steps += 1
        if steps % 20 == 0:  # redraw sparingly: the bar must not cost training time
            progress.advance(task, n * 20)

    def on_epoch(row: dict[str, Any]) -> None:
        val = row.get("val_acc", math.nan)
        stats = (
            f"loss {row['train_loss']:.4f}  acc {row['train_acc']:.2%}  "
            f"val {val:.2%}  {row['images_per_s']:,.0f} img/s"
        )
        progress.update(task, completed=per_epoch)
        who = f"member {row['member'] + 1}/{members} " if members > 1 else ""
        progress.console.print(f"{who}epoch {row['epoch']}: {stats}  ({row['seconds']:.1f} s)")
        last = row["epoch"] == epochs and row["member"] == members - 1
        if not last:
            progress.update(task, completed=0, epoch=row["epoch"] % epochs + 1)

    with progress:
        yield on_epoch, on_step
