"""One recorded training run as `digitlab train` does it, and how its model card is printed;
shared by `train`, `runs sweep` and `retrain`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rich.table import Table

from digitlab.cli.common import err_console, print_table
from digitlab.config import Settings
from digitlab.registry import versions as registry
from digitlab.registry.lifecycle import serving_version, sync_models


def run_training(
    cfg: Any,
    settings: Settings,
    *,
    activate: bool,
    sweep: str | None = None,
    also_on_epoch: Callable[[dict[str, Any]], None] | None = None,
    also_on_step: Callable[[int], None] | None = None,
) -> registry.ModelVersion:
    """Train and publish one version, recorded as a run (registered with the run). The
    parent (`cfg.parent`) and extra images (`cfg.extra`) are loaded and checked first, so a
    wrong one fails before a run is recorded or anything trains. `also_on_epoch` and
    `also_on_step` follow the training beside the progress bar (the upgrade's status)."""
    from digitlab.experiments import tracking
    from digitlab.ml.finetune import prepare
    from digitlab.ml.pipeline import git_commit, library_versions, train_and_register
    from digitlab.ml.progress import training_progress
    from digitlab.ml.train import pick_device

    if cfg.parent is not None:
        sync_models(settings)  # a parent registered in the database is fetched first
    cfg, sources = prepare(cfg, settings.model_dir)
    engine = tracking.open_store(settings)
    # The first version of all becomes the default regardless of `activate`.
    active = activate or serving_version(settings) is None
    err_console.print(
        f"training recipe [bold]{cfg.recipe}[/bold] on {cfg.dataset} "
        f"({'dry run' if cfg.dry_run else f'{cfg.epochs} epochs'}, device {pick_device()})"
    )
    if sources.parent is not None:
        err_console.print(f"starting from model {sources.parent.version} ({cfg.arch} network)")
        for name, values in sources.overridden.items():
            err_console.print(
                f"  {name}: the parent's {values['parent']!r}, not the recipe's "
                f"{values['recipe']!r}"
            )
    if sources.extra is not None:
        count = len(sources.extra.train.labels)
        err_console.print(
            f"extra: {count} images from {sources.extra.folder}, weight {cfg.extra_weight:g}"
            if count
            else f"extra: {sources.extra.folder} has no train images; training without them"
        )
    with (
        tracking.recorded_run(
            engine,
            config=cfg.to_dict(),
            libraries=library_versions(),
            git_commit=git_commit(),
            sweep=sweep,
        ) as run,
        training_progress(cfg, err_console) as (on_epoch, on_step),
    ):

        def each_epoch(row: dict[str, Any]) -> None:
            on_epoch(row)
            run.log_epoch(row)
            if also_on_epoch is not None:
                also_on_epoch(row)

        def each_step(n: int) -> None:
            on_step(n)
            if also_on_step is not None:
                also_on_step(n)

        model = train_and_register(
            cfg,
            settings,
            activate=activate,
            on_epoch=each_epoch,
            on_step=each_step,
            sources=sources,
        )
        run.succeeded(model, active=active)
    err_console.print(f"recorded as run {run.id}")
    return model


def print_card(card: dict[str, Any]) -> None:
    m = card["metrics"]
    speed = "" if m.get("images_per_s") is None else f" ({m['images_per_s']:,.0f} images/s)"
    table = Table(title=f"model {card['version']}", show_header=False, title_justify="left")
    rows = [
        ("dataset", card["dataset"]["name"]),
        ("recipe", f"{card['recipe']} (seed {card['seed']}, {card['config']['epochs']} epochs)"),
        *lineage_rows(card.get("lineage") or {}),
        ("test accuracy", f"{m['test_accuracy']:.2%} (ONNX {m['onnx_test_accuracy']:.2%})"),
        (
            "validation accuracy",
            "-" if m.get("val_accuracy") is None else f"{m['val_accuracy']:.2%}",
        ),
        (
            "training time",
            f"{m['train_seconds']:.1f} s on {m['device']}{speed}",
        ),
        ("ONNX parity", f"max |Δlogit| {m['parity_max_abs_diff']:.1e}"),
        *phase_rows(m.get("phase_seconds") or {}),
        ("ONNX SHA-256", card["onnx"]["sha256"][:16] + "..."),
        ("created", card["created_at"]),
    ]
    for key, value in rows:
        table.add_row(key, str(value))
    print_table(table)


def phase_rows(phases: dict[str, float]) -> list[tuple[str, str]]:
    """Where the run's time went (cards since issue 32 have it): load, fit, test, ..."""
    if not phases:
        return []
    return [("phases", "  ".join(f"{name} {seconds:.2f} s" for name, seconds in phases.items()))]


def lineage_rows(lineage: dict[str, Any]) -> list[tuple[str, str]]:
    """The card's parent and extra images, when it has them (older cards have neither)."""
    rows = []
    if lineage.get("parent"):
        rows.append(("fine-tuned from", lineage["parent"]))
    if extra := lineage.get("extra"):
        rows.append(
            (
                "extra images",
                f"{extra['images']} images, weight {extra['weight']:g} "
                f"({extra['samples']} samples, {len(extra['feedback_ids'])} feedback ids), "
                f"from {extra['folder']}",
            )
        )
    return rows
