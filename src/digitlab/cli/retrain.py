"""`digitlab retrain`: people's corrections -> training data -> a fine-tuned candidate ->
evaluation beside the serving model -> promotion only when the policy holds.

digitlab retrain [--since DATE] [--model VERSION] [--epochs N] [--extra-weight W]
                 [--min-gain POINTS] [--max-mnist-drop POINTS] [--no-promote] [--out DIR]
                 [--include-anonymous]

Only labellers' corrections train unless `--include-anonymous` is given: anyone who
reaches the service can send an anonymous one (docs/learning-loop.md).

Steps, each leaving a trace: the export (a folder with its manifest), the training (a
recorded run; the card names the parent and the corrections), the evaluation of both
models on the MNIST test set and the held-out corrections (stored per version, shown on
the Models page), the decision with its reasons (report.json, comparison.png) and, when
it holds, a promotion recorded like any other.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from digitlab.cli.common import UsageError, console, err_console, friendly_errors, print_table
from digitlab.cli.feedback import anonymous_note
from digitlab.config import get_settings
from digitlab.feedback.policy import HELDOUT, MNIST_TEST, Comparison, Policy, comparison_png, decide
from digitlab.registry import versions as registry

if TYPE_CHECKING:
    from sqlalchemy import Engine

# Each correction counts this many times an MNIST image: a few hundred against 55,000.
EXTRA_WEIGHT = 10.0


def register(app: typer.Typer) -> None:
    app.command("retrain")(friendly_errors(retrain))


def parse_date(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise UsageError(f"--since {value!r} is not a date (use e.g. 2026-11-28)") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def retrain(
    since: Annotated[str | None, typer.Option(help="Only corrections since (ISO date).")] = None,
    model: Annotated[
        str | None, typer.Option(help="Only corrections of this version's predictions.")
    ] = None,
    epochs: Annotated[int | None, typer.Option(min=1, help="Fine-tuning epochs.")] = None,
    extra_weight: Annotated[
        float, typer.Option(min=0.001, help="How much a correction counts against an MNIST image.")
    ] = EXTRA_WEIGHT,
    min_gain: Annotated[
        float, typer.Option(help="Points the candidate must gain on held-out corrections.")
    ] = 0.0,
    max_mnist_drop: Annotated[
        float, typer.Option(min=0.0, help="Points the candidate may lose on MNIST test.")
    ] = 0.1,
    promote: Annotated[bool, typer.Option(help="Promote when the policy holds.")] = True,
    out: Annotated[Path | None, typer.Option(help="Report folder.")] = None,
    seed: Annotated[int, typer.Option(min=0, help="Random seed of the fine-tuning.")] = 0,
    include_anonymous: Annotated[
        bool,
        typer.Option(help="Train on anonymous corrections too (anyone's; not checked)."),
    ] = False,
) -> None:
    """Retrain on people's corrections; promote only when the evidence says so."""
    from digitlab.cli.training import run_training  # the recorded training run, as `digitlab train`
    from digitlab.data import load_split
    from digitlab.data.corrections import load_part
    from digitlab.feedback.export import export
    from digitlab.feedback.policy import measure
    from digitlab.ml.recipes import get_recipe
    from digitlab.registry.lifecycle import activate_model, serving_version, sync_models
    from digitlab.store.db import open_engine

    settings = get_settings()
    start = parse_date(since)
    engine = open_engine(settings.database_url)
    sync_models(settings)
    serving = serving_version(settings)
    if serving is None:
        raise UsageError("no serving model to improve on; train one with `digitlab train`")
    parent = registry.load_version(settings.model_dir, serving)
    if parent.card["dataset"]["name"] != "mnist":
        raise UsageError(f"{serving} is not an MNIST model; retrain works on MNIST models")
    began = time.perf_counter()
    folder = out or settings.report_dir / f"retrain-{datetime.now(UTC):%Y%m%d-%H%M%S}"
    exported = export(
        engine,
        folder / "corrections",
        since=start,
        model=model,
        include_anonymous=include_anonymous,
    )
    counts = exported.counts
    console.print(
        f"exported {counts['items']} corrections: {counts['train']} to train on, "
        f"{counts['heldout']} held out ({exported.path})" + anonymous_note(exported.anonymous),
        highlight=False,
        soft_wrap=True,
    )
    if counts["train"] == 0 or counts["heldout"] == 0:
        console.print("not enough corrections to train on and to judge by; nothing to do")
        return
    if (parent.path / "model.pt").is_file():
        cfg = get_recipe("finetune").replace(parent=serving)
    else:  # the registry in PostgreSQL keeps ONNX files only: start from scratch
        err_console.print(f"{serving} has no model.pt here; training from scratch")
        cfg = get_recipe("fast")
    cfg = cfg.replace(extra=str(exported.path), extra_weight=extra_weight, seed=seed)
    if epochs is not None:
        cfg = cfg.replace(epochs=epochs)
    candidate = run_training(cfg, settings, activate=False)
    used = sorted(
        item["feedback_id"]
        for item in exported.manifest["items"]
        if item["part"] == "train" and item["feedback_id"] is not None
    )
    sets = {
        MNIST_TEST: load_split("mnist", "test", settings),
        HELDOUT: load_part(exported.path, "heldout"),
    }
    comparison = Comparison(serving, candidate.version, measure([parent, candidate], sets))
    ok, reasons = decide(comparison, Policy(min_gain=min_gain, max_mnist_drop=max_mnist_drop))
    record(engine, comparison, candidate, used)
    report = comparison.as_dict() | {
        "promote": ok,
        "promoted": ok and promote,
        "reasons": reasons,
        "include_anonymous": include_anonymous,
        "anonymous": exported.anonymous,
        "feedback_ids_trained_on": used,
        "seconds": round(time.perf_counter() - began, 1),
    }
    (folder / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    comparison_png(comparison, folder / "comparison.png")
    print_comparison(comparison)
    for reason in reasons:
        console.print(f"  {reason}")
    if ok and promote:
        activate_model(settings, candidate.version, by="retrain")
        console.print(f"promoted {candidate.version}: it serves now")
    elif ok:
        console.print(f"{candidate.version} passes the policy; not promoted (--no-promote)")
    else:
        console.print(f"not promoted: {serving} keeps serving")
    console.print(f"report: {folder / 'report.json'}, {folder / 'comparison.png'}")


def record(
    engine: Engine, comparison: Comparison, candidate: registry.ModelVersion, used: list[int]
) -> None:
    """Both models' scores per set, and which corrections the candidate was trained on
    (none for `digitlab upgrade`'s candidate)."""
    from sqlalchemy import select

    from digitlab.registry.publish import ensure_model
    from digitlab.store import db, lineage
    from digitlab.store.models import ModelRow

    ensure_model(engine, candidate, active=False)
    with db.transaction(engine) as session:
        rows = session.execute(
            select(ModelRow.version, ModelRow.id).where(
                ModelRow.version.in_([comparison.serving, comparison.candidate])
            )
        ).all()
        ids: dict[str, int] = {r.version: r.id for r in rows}
        lineage.record_training_feedback(
            session, model_id=ids[candidate.version], feedback_ids=used
        )
        for name, by_version in comparison.scores.items():
            for version, score in by_version.items():
                if version not in ids:  # a serving model the store has not met yet
                    continue
                lineage.record_evaluation(
                    session,
                    model_id=ids[version],
                    name=name,
                    images=score.images,
                    accuracy=score.accuracy,
                )


def print_comparison(comparison: Comparison) -> None:
    table = Table(title=f"serving {comparison.serving} vs candidate {comparison.candidate}")
    for col in ("set", "images", "serving", "candidate", "change"):
        table.add_column(col, justify="right")
    for name, by in comparison.scores.items():
        before, after = by[comparison.serving], by[comparison.candidate]
        table.add_row(
            name,
            str(before.images),
            f"{before.accuracy:.2%}",
            f"{after.accuracy:.2%}",
            f"{comparison.points(name):+.2f} pts",
        )
    print_table(table)
