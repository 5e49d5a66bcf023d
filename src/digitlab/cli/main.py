"""The `digitlab` command line: thin wrappers over importable functions.

digitlab --help
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from digitlab.cli import feedback as feedback_cli
from digitlab.cli import read as read_cli
from digitlab.cli import retrain as retrain_cli
from digitlab.cli import runs as runs_cli
from digitlab.cli import serve as serve_cli
from digitlab.cli import store as store_cli
from digitlab.cli import upgrade as upgrade_cli
from digitlab.cli.common import (
    UsageError,
    console,
    err_console,
    friendly_errors,
    print_table,
)
from digitlab.cli.training import print_card, run_training
from digitlab.config import get_settings
from digitlab.data import DATASETS, SPLITS, load_split
from digitlab.registry import versions as registry
from digitlab.registry.lifecycle import serving_version, sync_models

app = typer.Typer(
    help="digitlab: handwritten-digit recognition, from training to serving.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
models_app = typer.Typer(help="List model versions and choose the default.", no_args_is_help=False)
data_app = typer.Typer(help="Download and verify datasets.", no_args_is_help=True)
app.add_typer(models_app, name="models")
app.add_typer(data_app, name="data")

DatasetOpt = Annotated[str, typer.Option(help=f"Dataset: {', '.join(DATASETS)}.")]


def check_dataset(name: str) -> None:
    if name not in DATASETS:
        raise UsageError(f"unknown dataset {name!r}; choose from {', '.join(DATASETS)}")


@app.command()
@friendly_errors
def train(
    recipe: Annotated[
        str | None,
        typer.Option(
            help="Recipe: fast, best, plain, reference or finetune; default fast, "
            "finetune with --from.",
            envvar="DIGITLAB_RECIPE",
        ),
    ] = None,
    dataset: DatasetOpt = "mnist",
    epochs: Annotated[
        int | None, typer.Option(min=0, help="Override the epochs (0: only with --from).")
    ] = None,
    batch_size: Annotated[int | None, typer.Option(min=1, help="Override the batch.")] = None,
    lr: Annotated[float | None, typer.Option(min=0.0, help="Override the peak LR.")] = None,
    seed: Annotated[int, typer.Option(min=0, help="Random seed; same seed, same model.")] = 0,
    dry_run: Annotated[
        bool,
        typer.Option(help="Train one batch only (smoke test).", envvar="DIGITLAB_TRAIN_DRY_RUN"),
    ] = False,
    activate: Annotated[bool, typer.Option(help="Make the new version the default.")] = True,
    if_missing: Annotated[
        bool, typer.Option(help="Do nothing when a default model already exists.")
    ] = False,
    extra: Annotated[
        Path | None,
        typer.Option(
            metavar="DIR",
            help="A corrections folder (`digitlab feedback export`): its train part is "
            "added to the training images.",
        ),
    ] = None,
    extra_weight: Annotated[
        float, typer.Option(metavar="W", help="Each --extra image counts W times (> 0).")
    ] = 1.0,
    parent: Annotated[
        str | None,
        typer.Option(
            "--from",
            metavar="VERSION",
            help="Fine-tune: start from this version's weights and architecture.",
        ),
    ] = None,
) -> None:
    """Train a model, export it to ONNX, publish a new version."""
    from digitlab.ml.recipes import get_recipe  # torch only loads for training

    settings = get_settings()
    check_dataset(dataset)
    if extra_weight <= 0:
        raise UsageError(f"--extra-weight must be > 0, not {extra_weight}")
    if extra is None and extra_weight != 1.0:
        raise UsageError("--extra-weight needs --extra DIR")
    if epochs == 0 and parent is None:
        raise UsageError("--epochs 0 needs --from VERSION (there is nothing to train)")
    if if_missing and (existing := serving_version(settings)):
        console.print(f"model {existing} exists; not training")
        return
    try:
        cfg = get_recipe(recipe or ("finetune" if parent else "fast"))
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    overrides = {"epochs": epochs, "batch_size": batch_size, "lr": lr}
    cfg = cfg.replace(
        dataset=dataset,
        seed=seed,
        dry_run=dry_run,
        extra=None if extra is None else str(extra.resolve()),
        extra_weight=extra_weight,
        parent=parent,
        **{k: v for k, v in overrides.items() if v is not None},
    )
    model = run_training(cfg, settings, activate=activate)
    print_card(model.card)


@app.command()
@friendly_errors
def evaluate(
    version: Annotated[str | None, typer.Argument(help="Model version; default: current.")] = None,
    dataset: Annotated[str | None, typer.Option(help="Default: the model's dataset.")] = None,
) -> None:
    """Test-set metrics and a report folder with plots."""
    from digitlab.evaluation.report import evaluate as run_eval
    from digitlab.evaluation.report import write_report

    settings = get_settings()
    sync_models(settings)
    model = registry.resolve(settings.model_dir, version)
    name = dataset or model.card["dataset"]["name"]
    check_dataset(name)
    test = load_split(name, "test", settings)
    result = run_eval(model, test)
    out = write_report(model, result, test, settings.report_dir / model.version)
    table = Table(
        title=f"{model.version} on {name}/test: accuracy {result.accuracy:.2%} "
        f"({result.metrics()['errors']} errors of {len(test.labels)})"
    )
    for col in ("label", "precision", "recall", "support"):
        table.add_column(col, justify="right")
    for row in result.metrics()["per_class"]:
        table.add_row(
            str(row["label"]),
            f"{row['precision']:.2%}",
            f"{row['recall']:.2%}",
            str(row["support"]),
        )
    print_table(table)
    console.print(f"report: {out}")


@models_app.callback(invoke_without_command=True)
@friendly_errors
def models_list(ctx: typer.Context) -> None:
    """List model versions with their metrics; * marks the default."""
    if ctx.invoked_subcommand is not None:
        return
    settings = get_settings()
    sync_models(settings)
    versions = registry.list_versions(settings.model_dir)
    if not versions:
        console.print(f"no models in {settings.model_dir}; train one with `digitlab train`")
        return
    current = registry.current_version(settings.model_dir)
    table = Table()
    for col in ("", "version", "dataset", "recipe", "test acc", "train s", "created"):
        table.add_column(col)
    for v in versions:
        m = v.card.get("metrics", {})
        table.add_row(
            "*" if v.version == current else "",
            v.version,
            v.card["dataset"]["name"],
            v.card.get("recipe", "?"),
            f"{m.get('test_accuracy', 0):.2%}",
            f"{m.get('train_seconds', 0):.1f}",
            v.card.get("created_at", "?"),
        )
    print_table(table)


@models_app.command("use")
@friendly_errors
def models_use(version: Annotated[str, typer.Argument(help="The version to serve.")]) -> None:
    """Make VERSION the default model (atomic switch)."""
    from digitlab.registry.lifecycle import activate_model

    activate_model(get_settings(), version)
    console.print(f"default model is now {version}")


@models_app.command("show")
@friendly_errors
def models_show(
    version: Annotated[str | None, typer.Argument(help="Default: current.")] = None,
) -> None:
    """Print a model version's card."""
    settings = get_settings()
    sync_models(settings)
    print_card(registry.resolve(settings.model_dir, version).card)


@data_app.command("download")
@friendly_errors
def data_download(dataset: DatasetOpt = "mnist") -> None:
    """Download any missing files of a dataset and verify all of them."""
    check_dataset(dataset)
    settings = get_settings()
    for split in SPLITS:
        s = load_split(dataset, split, settings)
        console.print(f"{dataset}/{split}: {len(s.labels)} images verified")


@data_app.command("verify")
@friendly_errors
def data_verify(dataset: DatasetOpt = "mnist") -> None:
    """Verify a dataset's files without downloading anything."""
    check_dataset(dataset)
    settings = get_settings()
    for split in SPLITS:
        s = load_split(dataset, split, settings, download=False)
        console.print(f"{dataset}/{split}: {len(s.labels)} images, checksums match")


@app.command()
@friendly_errors
def run(
    serve: Annotated[
        bool,
        typer.Option(
            help="Serve the model after; --no-serve only trains the first model if needed "
            "(no upgrade: `digitlab upgrade` trains the robust one in the foreground)."
        ),
    ] = True,
    upgrade: Annotated[
        bool,
        typer.Option(
            help="While serving, train the robust model in the background and switch to it "
            "when the promotion policy holds (setting: DIGITLAB_UPGRADE)."
        ),
    ] = True,
) -> None:
    """The main job: train a quick model if none exists, serve it, then upgrade it to the
    robust one in the background."""
    from digitlab.cli.upgrade_launcher import BackgroundUpgrade, first_config
    from digitlab.cli.upgrade_worker import upgrade_needed

    settings = get_settings()
    upgrade = upgrade and settings.upgrade
    if serving_version(settings) is None:
        run_training(first_config(settings, upgrade), settings, activate=True)
    sync_models(settings)
    print_card(registry.resolve(settings.model_dir).card)
    if not serve:
        return
    background = None
    if not upgrade:
        console.print("upgrade off (--no-upgrade or DIGITLAB_UPGRADE=false)")
    elif why_not := upgrade_needed(settings, settings.upgrade_recipe):
        console.print(f"no upgrade: {escape(why_not)}", highlight=False)
    else:
        background = BackgroundUpgrade(settings, err_console)
        background.start()
    try:
        serve_cli.serve_forever(settings)
    finally:
        if background is not None:
            background.stop()  # a trainer still at work is cancelled, and says so


# db, demo, score, predictions, stats: the prediction store's commands.
store_cli.register(app)
# feedback export: corrections as training data.
feedback_cli.register(app)
read_cli.register(app)
retrain_cli.register(app)
serve_cli.register(app)
# upgrade: the robust model, trained and promoted by the policy (`run` starts it itself).
upgrade_cli.register(app)
# runs list|show|compare, sweep, models promote|history: experiments and promotion.
runs_cli.register(app, models_app)


def main() -> None:
    app(prog_name="digitlab")


if __name__ == "__main__":
    main()
