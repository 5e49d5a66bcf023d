"""The prediction store's commands, registered on the `digitlab` app by cli/main.py:

digitlab db upgrade | downgrade REVISION | current
digitlab demo [--count N]
digitlab score --dataset mnist --split test   |   digitlab score --folder DIR
digitlab score --folder DIR --numbers   (each file a whole number, as `digitlab read`)
digitlab score --dataset mnist --split train --shard K/N [--job NAME]
digitlab predictions [--limit N] [--model VERSION] [--label D] [--wrong]
digitlab stats
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn
from rich.table import Table

from digitlab.cli.common import (
    UsageError,
    console,
    err_console,
    friendly_errors,
    print_error,
    print_table,
)
from digitlab.config import Settings, get_settings
from digitlab.registry import versions as registry
from digitlab.registry.lifecycle import database_configured

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt
    from sqlalchemy import Engine

    from digitlab.inference.predictor import Batch
    from digitlab.inference.runtime import OnnxClassifier
    from digitlab.scoring.bulk import ScoreResult, StoredBefore
    from digitlab.scoring.numbers import NumbersResult
    from digitlab.scoring.sharding import Shard

db_app = typer.Typer(help="The prediction store's schema.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    """Add the store's commands to `app`, each behind `friendly_errors`."""
    app.add_typer(db_app, name="db")
    for name, fn in (("upgrade", db_upgrade), ("downgrade", db_downgrade), ("current", db_current)):
        db_app.command(name)(friendly_errors(fn))
    for fn in (demo, score, predictions, stats):
        app.command()(friendly_errors(fn))


def register_trained(model: registry.ModelVersion, settings: Settings, *, active: bool) -> None:
    """Called by `digitlab train`: record the new version in the configured database."""
    from digitlab.registry.publish import ensure_model
    from digitlab.store.db import StoreError, open_engine

    if not database_configured(settings):
        return
    try:
        ensure_model(open_engine(settings.database_url), model, active=active)
    except StoreError as exc:  # the model is published; it registers on first use
        err_console.print(f"[yellow]warning:[/yellow] not registered in the database: {exc}")


def current_model(settings: Settings, version: str | None) -> tuple[Engine, OnnxClassifier, int]:
    """Engine (schema checked), classifier and database id of `version` (default: current)."""
    from digitlab.inference.runtime import OnnxClassifier
    from digitlab.registry.publish import ensure_model
    from digitlab.store.artifacts import folder_may_activate, in_database
    from digitlab.store.db import open_engine

    engine = open_engine(settings.database_url)
    if in_database(engine):  # the registry is there; this machine may have no models yet
        from digitlab.registry.database import sync

        sync(engine, settings.model_dir)
    model = registry.resolve(settings.model_dir, version)
    classifier = OnnxClassifier(model)
    current = model.version == registry.current_version(settings.model_dir)
    active = current and folder_may_activate(engine)
    return engine, classifier, ensure_model(engine, model, active=active)


def db_upgrade(
    revision: Annotated[str, typer.Argument(help="Target revision.")] = "head",
) -> None:
    """Bring the database schema up to date (the deployment runs this)."""
    from digitlab.store import migrate

    change_schema(migrate.upgrade, revision)


def db_downgrade(
    revision: Annotated[
        str, typer.Argument(help="A revision id, base (drops everything) or `-- -1` (one step).")
    ],
) -> None:
    """Undo migrations down to REVISION (`base` drops every table and its data)."""
    from digitlab.store import migrate

    change_schema(migrate.downgrade, revision)


def change_schema(step: Callable[[Engine, str], None], revision: str) -> None:
    """Run an Alembic step on the configured database and say what changed."""
    from digitlab.store import db, migrate

    engine = db.make_engine(get_settings().database_url)
    db.ping(engine)
    with db.translate_errors(engine):
        before = migrate.current_revision(engine)
        step(engine, revision)
        after = migrate.current_revision(engine)
    console.print(f"schema of {db.display(engine.url)}: {before or 'empty'} -> {after or 'empty'}")


def db_current() -> None:
    """Print the schema revision of the database and the one this digitlab needs."""
    from digitlab.store import db, migrate

    engine = db.make_engine(get_settings().database_url)
    db.ping(engine)
    with db.translate_errors(engine):
        current = migrate.current_revision(engine)
    head = migrate.head_revision()
    state = "up to date" if current == head else "behind: run `digitlab db upgrade`"
    console.print(f"{db.display(engine.url)}: revision {current or 'none'} (head {head}, {state})")


def demo(
    count: Annotated[int, typer.Option(min=1, max=10000, help="How many samples.")] = 1,
    seed: Annotated[int | None, typer.Option(help="Pick the same samples each time.")] = None,
    model: Annotated[str | None, typer.Option(help="Model version; default: current.")] = None,
) -> None:
    """The reference pipeline: store, read back, predict, record."""
    import numpy as np

    from digitlab.data import load_split
    from digitlab.scoring.bulk import demo as run_demo

    settings = get_settings()
    engine, classifier, model_id = current_model(settings, model)
    split = load_split("mnist", "test", settings)
    samples = run_demo(
        engine, classifier, model_id, split, count=count, rng=np.random.default_rng(seed)
    )
    table = Table(title=f"model {classifier.model.version}, round trip bit for bit: ok")
    for col in ("input id", "prediction id", "sample", "true", "predicted", "confidence"):
        table.add_column(col)
    for s in samples:
        row = (s.input_id, s.prediction_id, s.source, s.true_label, s.predicted)
        table.add_row(*map(str, row), f"{s.confidence:.2%}")
    print_table(table)


def score(
    dataset: Annotated[str | None, typer.Option(help="A dataset: mnist, fashion-mnist.")] = None,
    split: Annotated[str, typer.Option(help="The dataset's split.")] = "test",
    folder: Annotated[
        Path | None, typer.Option(help="Score image files (PNG, JPEG, BMP, GIF, TIFF).")
    ] = None,
    limit: Annotated[int | None, typer.Option(min=1, help="Only the first N images.")] = None,
    model: Annotated[str | None, typer.Option(help="Model version; default: current.")] = None,
    shard: Annotated[
        str | None,
        typer.Option(
            metavar="K/N", help="Store only part K of N (K from 0), once: a retry stores nothing."
        ),
    ] = None,
    job: Annotated[
        str | None,
        typer.Option(help="Name of the sharded run; default: from source, limit and model."),
    ] = None,
    numbers: Annotated[
        bool,
        typer.Option(
            "--numbers",
            help="With --folder: read each file as a whole number and store the readings;"
            " a name starting with digits (2026.png) gives the true number.",
        ),
    ] = False,
) -> None:
    """Predict a split or a folder of images; store every row."""
    from digitlab.scoring import inputs as score_inputs
    from digitlab.scoring.bulk import StoredBefore, score_shard
    from digitlab.scoring.bulk import score as run_score
    from digitlab.scoring.sharding import check_job, default_job, parse_shard

    if numbers and (folder is None or dataset is not None):
        raise UsageError("--numbers reads image files: give --folder DIR (and no --dataset)")
    if numbers and shard is not None:
        raise UsageError("--numbers reads the whole folder: it takes no --shard")
    if (dataset is None) == (folder is None):
        raise UsageError("give either --dataset (with --split) or --folder")
    if job is not None and shard is None:
        raise UsageError("--job names a sharded run: give --shard K/N too")
    try:  # before anything is loaded or stored
        part = parse_shard(shard) if shard is not None else None
        job = check_job(job) if job is not None else None
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    settings = get_settings()
    # The database first: a wrong URL fails before minutes of loading or decoding.
    engine, classifier, model_id = current_model(settings, model)
    if numbers:
        assert folder is not None
        score_numbers(engine, classifier, model_id, folder, limit=limit, settings=settings)
        return
    if part is not None:
        source = (
            score_inputs.folder_source(folder)
            if folder is not None
            else score_inputs.dataset_source(str(dataset), split)
        )
        job = job or default_job(source, limit, classifier.model.version)
        if already_stored(engine, job, part):
            return
    if dataset is not None:
        inputs = score_inputs.dataset_inputs(dataset, split, settings, limit=limit, shard=part)
    else:
        assert folder is not None
        inputs = score_inputs.folder_inputs(folder, limit=limit, shard=part)
    with Progress(
        "scoring", BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=err_console
    ) as progress:
        task = progress.add_task("score", total=len(inputs.images))

        def advance(n: int) -> None:
            progress.advance(task, n)

        if part is None:
            result: ScoreResult | StoredBefore = run_score(
                engine, classifier, model_id, inputs.images, sources=inputs.sources,
                labels=inputs.labels, originals=inputs.originals, on_progress=advance,
            )  # fmt: skip
        else:
            assert job is not None  # every sharded run has one by now
            result = score_shard(
                engine, classifier, model_id, inputs.images, job=job, shard=part,
                sources=inputs.sources, labels=inputs.labels, originals=inputs.originals,
                on_progress=advance,
            )  # fmt: skip
    if isinstance(result, StoredBefore):  # a concurrent run of this shard committed first
        assert job is not None and part is not None
        print_stored_before(result, job, part)
        return
    print_score(result, classifier.model.version)
    if part is not None:
        where = (
            f"images {inputs.first} to {inputs.first + result.stored - 1}"
            if result.stored
            else f"no images (the run has fewer than {part.count})"
        )
        console.print(f"shard {part} of job {job!r}: {where}", highlight=False)


def score_numbers(
    engine: Engine,
    classifier: OnnxClassifier,
    model_id: int,
    folder: Path,
    *,
    limit: int | None,
    settings: Settings,
) -> None:
    """`score --folder DIR --numbers`: each file read and stored as POST /api/v1/read does;
    a file that cannot be read is reported and the rest go on (exit 1 at the end)."""
    from digitlab.inference.imagefiles import image_paths
    from digitlab.inference.predictor import Predictor
    from digitlab.scoring.numbers import score_numbers as run_numbers

    paths = image_paths(folder)[:limit]
    # The API's predictor (its verdict threshold setting), with the version chosen here.
    predictor = Predictor(settings.model_dir, threshold=settings.verdict_threshold)

    def predict(digits: npt.NDArray[np.uint8]) -> Batch:
        return predictor.predict(digits, classifier)

    with Progress(
        "reading", BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=err_console
    ) as progress:
        task = progress.add_task("read", total=len(paths))
        result = run_numbers(
            engine, predict, model_id, paths, on_progress=lambda n: progress.advance(task, n)
        )
    for name, why in result.failed:
        print_error(f"{name}: {why}")
    print_numbers(result, classifier.model.version)
    if result.failed:
        raise typer.Exit(1)


def print_numbers(result: NumbersResult, version: str) -> None:
    console.print(
        f"stored {result.read} readings of model {version} "
        f"({result.ms_per_reading:.1f} ms per reading); "
        f"no number: {result.no_number}; failed: {len(result.failed)}",
        highlight=False,
    )
    if result.exact_accuracy is not None and result.digit_accuracy is not None:
        console.print(
            f"exact numbers {result.exact_accuracy:.2%} ({result.exact} of {result.named} "
            f"named by their number), per digit {result.digit_accuracy:.2%}",
            highlight=False,
        )


def already_stored(engine: Engine, job: str, shard: Shard) -> bool:
    """Say so and return True when this shard of `job` was stored by an earlier run."""
    from digitlab.scoring.bulk import stored_before

    found = stored_before(engine, job=job, shard=shard)
    if found is not None:
        print_stored_before(found, job, shard)
    return found is not None


def print_stored_before(found: StoredBefore, job: str, shard: Shard) -> None:
    when = found.created_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")
    console.print(
        f"shard {shard} of job {job!r} already stored ({found.images} images, {when} UTC); "
        "nothing stored",
        highlight=False,
    )


def print_score(result: ScoreResult, version: str) -> None:
    rate = result.stored / result.seconds if result.seconds else 0.0
    console.print(
        f"stored {result.stored} predictions of model {version} "
        f"in {result.seconds:.2f} s ({rate:,.0f}/s)"
    )
    if result.accuracy is not None:
        wrong = result.labelled - result.correct
        console.print(
            f"accuracy {result.accuracy:.2%} ({wrong} wrong of {result.labelled} labelled)"
        )
    share = result.refused / result.stored if result.stored else 0.0
    console.print(f"not a digit: {result.refused} refused of {result.stored} ({share:.2%})")


def predictions(
    limit: Annotated[int, typer.Option(min=1, help="How many, newest first.")] = 20,
    model: Annotated[str | None, typer.Option(help="Only this model version.")] = None,
    label: Annotated[int | None, typer.Option(min=0, max=9, help="Predicted label.")] = None,
    wrong: Annotated[bool, typer.Option(help="Only those whose true label differs.")] = False,
) -> None:
    """List recent predictions."""
    from digitlab.store import db, queries

    engine = db.open_engine(get_settings().database_url)
    with db.transaction(engine) as session:
        rows = queries.recent_predictions(
            session, limit=limit, model=model, label=label, wrong=wrong
        )
    if not rows:
        console.print("no predictions match")
        return
    table = Table()
    for col in ("id", "input", "created", "model", "predicted", "confidence", "true", "source"):
        table.add_column(col)
    for r in rows:
        true = "?" if r.true_label is None else str(r.true_label)
        created = r.created_at.strftime("%Y-%m-%d %H:%M:%S")
        table.add_row(str(r.id), str(r.input_id), created, r.model_version, str(r.label),
                      f"{r.confidence:.2%}", true, r.source)  # fmt: skip
    print_table(table)


def stats() -> None:
    """Accuracy per model version over labelled inputs."""
    from digitlab.store import db, queries

    engine = db.open_engine(get_settings().database_url)
    with db.transaction(engine) as session:
        found = queries.stats_by_model(session)
    if not found:
        console.print("no predictions with a known true label yet")
        return
    for s in found:
        console.print(
            f"model {s.version}: accuracy {s.accuracy:.2%} ({s.correct} of {s.count})",
            highlight=False,
        )
        table = Table(title="confusion (rows: true, columns: predicted)", title_justify="left")
        table.add_column("")
        for d in range(10):
            table.add_column(str(d), justify="right")
        for d, row in enumerate(s.confusion):
            table.add_row(str(d), *(str(n) if n else "." for n in row))
        print_table(table)
