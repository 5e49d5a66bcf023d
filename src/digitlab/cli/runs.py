"""Experiment commands, registered on the `digitlab` app by cli/main.py:

digitlab runs list [--limit N] [--status S] [--sweep NAME]
digitlab runs show ID
digitlab runs compare ID ID... [--plot PATH]
digitlab sweep CONFIG.toml [--dry-run]
digitlab models promote VERSION [--by NAME]
digitlab models history
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from digitlab.cli.common import UsageError, console, err_console, friendly_errors, print_table
from digitlab.config import get_settings

if TYPE_CHECKING:
    from digitlab.store.runs import RunRecord

runs_app = typer.Typer(help="Recorded training runs: list, show, compare.", no_args_is_help=True)
# Shown as columns, not as config changes.
IDENTITY = ("recipe", "dataset", "seed")


def register(app: typer.Typer, models_app: typer.Typer) -> None:
    """Add the experiment commands to `app`, each behind `friendly_errors`."""
    app.add_typer(runs_app, name="runs")
    for name, fn in (("list", runs_list), ("show", runs_show), ("compare", runs_compare)):
        runs_app.command(name)(friendly_errors(fn))
    app.command("sweep")(friendly_errors(sweep))
    models_app.command("promote")(friendly_errors(models_promote))
    models_app.command("history")(friendly_errors(models_history))


def load_runs(ids: list[int]) -> list[RunRecord]:
    from digitlab.store import db, runs

    engine = db.open_engine(get_settings().database_url)
    with db.transaction(engine) as session:
        return runs.get_runs(session, ids=ids)


def changes(config: dict[str, Any]) -> dict[str, Any]:
    """The settings of a run that differ from its recipe's defaults."""
    from digitlab.ml.recipes import RECIPES  # a dataclass module: no torch

    base = RECIPES[config["recipe"]].to_dict() if config.get("recipe") in RECIPES else {}
    return {
        k: v for k, v in config.items() if k not in IDENTITY and (k not in base or base[k] != v)
    }


def describe(config: dict[str, Any]) -> str:
    return " ".join(f"{k}={v}" for k, v in changes(config).items()) or "-"


def pct(value: Any) -> str:
    return "-" if value is None else f"{float(value):.2%}"


def when(moment: datetime | None) -> str:
    return "-" if moment is None else moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def duration(run: RunRecord) -> str:
    return "-" if run.seconds is None else f"{run.seconds:.0f} s"


def runs_list(
    limit: Annotated[int, typer.Option(min=1, help="How many, newest first.")] = 20,
    status: Annotated[
        str | None, typer.Option(help="Only runs that succeeded, failed, ... .")
    ] = None,
    sweep: Annotated[str | None, typer.Option(help="Only the runs of this sweep.")] = None,
) -> None:
    """List recorded training runs, newest first."""
    from digitlab.store import db, runs
    from digitlab.store.models import RUN_STATUSES

    if status is not None and status not in RUN_STATUSES:
        raise UsageError(f"unknown status {status!r}; choose from {', '.join(RUN_STATUSES)}")
    engine = db.open_engine(get_settings().database_url)
    with db.transaction(engine) as session:
        found = runs.list_runs(session, limit=limit, status=status, sweep=sweep)
    if not found:
        console.print("no runs recorded yet; `digitlab train` records one")
        return
    print_runs(found)


def print_runs(found: list[RunRecord], title: str | None = None) -> None:
    table = Table(title=title, title_justify="left")
    columns = ("id", "status", "started", "time", "recipe", "seed", "changes", "val acc",
               "test acc", "model")  # fmt: skip
    for col in columns:
        # Ids are copied into other commands: never cut; the changes wrap instead.
        table.add_column(col, no_wrap=col != "changes")
    for r in found:
        table.add_row(str(r.id), r.status, when(r.started_at)[:16], duration(r),
                      f"{r.recipe}/{r.dataset}", str(r.seed), describe(r.config), pct(r.val_acc),
                      pct(r.metrics.get("test_accuracy")), r.model_version or "-")  # fmt: skip
    print_table(table)


def runs_show(run_id: Annotated[int, typer.Argument(help="The run's id.")]) -> None:
    """Print one run: its settings, code, outcome and per-epoch metrics."""
    (run,) = load_runs([run_id])
    libraries = ", ".join(f"{k} {v}" for k, v in run.libraries.items())
    table = Table(title=f"run {run.id}", show_header=False, title_justify="left")
    rows = [
        ("status", run.status + (f": {run.error}" if run.error else "")),
        ("recipe", f"{run.recipe} on {run.dataset}, seed {run.seed}"),
        ("changes", describe(run.config)),
        ("sweep", run.sweep or "-"),
        ("started", when(run.started_at)),
        ("finished", f"{when(run.finished_at)} ({duration(run)})"),
        ("model", run.model_version or "-"),
        ("validation accuracy", pct(run.val_acc)),
        ("test accuracy", pct(run.metrics.get("test_accuracy"))),
        ("git commit", run.git_commit or "unknown"),
        ("libraries", libraries),
        ("config", " ".join(f"{k}={v}" for k, v in run.config.items())),
    ]
    for key, value in rows:
        table.add_row(key, value)
    print_table(table)
    if not run.epochs:
        console.print("no epochs recorded")
        return
    epochs = Table(title="epochs", title_justify="left")
    for col in ("member", "epoch", "lr", "train loss", "train acc", "val loss", "val acc", "s"):
        epochs.add_column(col, justify="right")
    for e in run.epochs:
        val_loss = "-" if e.val_loss is None else f"{e.val_loss:.4f}"
        epochs.add_row(str(e.member + 1), str(e.epoch), f"{e.lr:.3g}", f"{e.train_loss:.4f}",
                       pct(e.train_acc), val_loss, pct(e.val_acc), f"{e.seconds:.1f}")  # fmt: skip
    print_table(epochs)


def runs_compare(
    run_ids: Annotated[list[int], typer.Argument(help="Two or more run ids.")],
    plot: Annotated[
        Path | None, typer.Option(help="Also write the validation curves to this PNG.")
    ] = None,
) -> None:
    """Compare runs side by side: what differs, and how they did."""
    if len(run_ids) < 2:
        raise UsageError("compare needs at least two run ids")
    found = load_runs(run_ids)
    table = Table(title="* best of the row", title_justify="left")
    table.add_column("")
    for r in found:
        table.add_column(f"run {r.id}")
    keys = sorted({k for r in found for k in r.config})
    differing = [k for k in keys if len({repr(r.config.get(k)) for r in found}) > 1]
    table.add_row("status", *(r.status for r in found))
    for key in differing:
        table.add_row(key, *(str(r.config.get(key, "-")) for r in found))
    table.add_row("epochs", *(str(len(r.epochs)) for r in found))
    last = [r.epochs[-1] if r.epochs else None for r in found]
    table.add_row("final val loss", *best_marked([e.val_loss if e else None for e in last], min))
    table.add_row("val accuracy", *best_marked([r.val_acc for r in found], max, pct))
    test = [r.metrics.get("test_accuracy") for r in found]
    table.add_row("test accuracy", *best_marked(test, max, pct))
    table.add_row("train s", *(f"{r.metrics.get('train_seconds', 0):.1f}" for r in found))
    table.add_row("model", *(r.model_version or "-" for r in found))
    print_table(table)
    if plot is not None:
        from digitlab.evaluation.plots import validation_curves_png

        curves = {f"run {r.id}: {describe(r.config)}": [vars(e) for e in r.epochs] for r in found}
        plot.parent.mkdir(parents=True, exist_ok=True)
        validation_curves_png(curves, plot, title="runs " + ", ".join(map(str, run_ids)))
        console.print(f"plot: {plot}")


def best_marked(values: list[Any], best: Any, fmt: Any = lambda v: f"{v:.4f}") -> list[str]:
    """Format each value; the best (by `best`, min or max) gets a *."""
    known = [float(v) for v in values if v is not None]
    top = best(known) if len(known) > 1 else None
    return ["-" if v is None else fmt(v) + (" *" if float(v) == top else "") for v in values]


def sweep(
    config: Annotated[Path, typer.Argument(help="The sweep file (TOML).")],
    dry_run: Annotated[bool, typer.Option(help="Train one batch per run (smoke test).")] = False,
) -> None:
    """Train every config of a sweep file, one after another, each as a run."""
    from digitlab.cli.training import run_training
    from digitlab.experiments import sweep as sweeps
    from digitlab.experiments.tracking import open_store
    from digitlab.store import db, runs

    try:
        plan = sweeps.load_sweep(config)
    except sweeps.SweepError as exc:
        raise UsageError(str(exc)) from None
    settings = get_settings()
    engine = open_store(settings)  # before anything trains: a wrong database fails now
    label = f"{plan.name[:80]}-{datetime.now(UTC):%Y%m%d-%H%M%S}"  # fits runs.sweep
    total = len(plan.configs)
    err_console.print(f"sweep {label}: {total} runs; Ctrl-C stops after the current run")

    def notice() -> None:
        err_console.print("[yellow]stopping after this run[/yellow] (Ctrl-C again: now)")

    def train_one(cfg: Any) -> None:
        err_console.print(f"[bold]{label}[/bold]: {describe(cfg.to_dict())}")
        run_training(cfg.replace(dry_run=cfg.dry_run or dry_run), settings, activate=False,
                     sweep=label)  # fmt: skip

    with sweeps.stop_after_current(notice) as stop_requested:
        outcomes = sweeps.run_sweep(
            plan.configs, train_one, stop_requested=stop_requested, fatal=(db.StoreError,)
        )
    with db.transaction(engine) as session:
        print_runs(runs.list_runs(session, limit=total, sweep=label), title=f"sweep {label}")
    done = sum(o.status == "succeeded" for o in outcomes)
    console.print(f"{done} of {total} runs succeeded; compare: digitlab runs compare <ids>")
    if len(outcomes) < total or outcomes[-1].status == "interrupted":
        raise typer.Exit(130)  # stopped by Ctrl-C, as a shell reports it
    if done < total:
        raise typer.Exit(1)


def models_promote(
    version: Annotated[str, typer.Argument(help="The version to serve.")],
    by: Annotated[str | None, typer.Option(help="Who promotes; default: the OS user.")] = None,
) -> None:
    """Make VERSION the serving model, recorded with who and when."""
    from digitlab.registry import versions as registry
    from digitlab.registry.lifecycle import activate_model, current_user

    settings = get_settings()
    before = registry.current_version(settings.model_dir)
    who = by or current_user()
    activate_model(settings, version, by=who)
    console.print(f"promoted {version} (by {who}); it was {before or 'none'}")


def models_history(
    limit: Annotated[int, typer.Option(min=1, help="How many, newest first.")] = 20,
) -> None:
    """List promotions: which version was made the serving one, by whom, when."""
    from digitlab.store import db, runs

    engine = db.open_engine(get_settings().database_url)
    with db.transaction(engine) as session:
        found = runs.promotions(session, limit=limit)
    if not found:
        console.print("no promotions recorded yet")
        return
    table = Table()
    for col in ("promoted", "version", "by"):
        table.add_column(col)
    for p in found:
        table.add_row(when(p.promoted_at), p.version, p.promoted_by)
    print_table(table)
