"""`runs list`, `runs show`, `runs compare [--plot]` on runs written through the store
(no training needed to check what the tables say)."""

from __future__ import annotations

import re
from pathlib import Path

from PIL import Image
from sqlalchemy import Engine
from typer.testing import CliRunner

from digitlab.cli.main import app
from digitlab.config import Settings
from digitlab.ml.recipes import RECIPES
from digitlab.store import crud, db, runs

runner = CliRunner()
VERSION = "20261127-000000-mnist-fast"


def make_run(engine: Engine, changes: dict[str, object], val_accs: list[float]) -> int:
    config = RECIPES["fast"].replace(**changes).to_dict()
    with db.transaction(engine) as s:
        run_id = runs.create_run(s, recipe="fast", dataset="mnist", seed=0, config=config,
                                 libraries={"torch": "2.13.0"}, git_commit="feedbeef")  # fmt: skip
        for epoch, acc in enumerate(val_accs, start=1):
            row = {"member": 0, "epoch": epoch, "lr": 0.1, "train_loss": 0.3, "train_acc": 0.9}
            row |= {"val_loss": 1 - acc, "val_acc": acc, "seconds": 2.0}
            runs.add_epoch(s, run_id=run_id, row=row)
    return run_id


def finish(engine: Engine, run_id: int, val: float, test: float, version: str | None) -> None:
    with db.transaction(engine) as s:
        model_id = None
        if version:
            model_id = crud.register_model(
                s, version=version, dataset="mnist", onnx_sha256="0" * 64, metrics={}, active=False
            )
        metrics = {"val_accuracy": val, "test_accuracy": test, "train_seconds": 12.5}
        runs.finish_run(s, run_id=run_id, status="succeeded", metrics=metrics, model_id=model_id)


def run(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.output


def test_list_shows_each_run_and_what_it_changed(runs_env: Settings, engine: Engine) -> None:
    code, out = run("runs", "list")
    assert code == 0 and "no runs recorded yet" in out

    adam = make_run(engine, {"optimizer": "adam", "lr": 0.001}, [0.97, 0.98])
    finish(engine, adam, 0.98, 0.9876, VERSION)
    make_run(engine, {"batch_size": 64}, [0.96])  # still running
    code, out = run("runs", "list")
    assert code == 0, out
    for text in ("succeeded", "running", "optimizer=adam", "batch_size=64", "98.76%", VERSION):
        assert text in out

    code, out = run("runs", "list", "--status", "running")
    assert code == 0 and "batch_size=64" in out
    assert "optimizer=adam" not in out and VERSION not in out
    code, out = run("runs", "list", "--status", "succeeded")
    assert code == 0 and "optimizer=adam" in out and "lr=0.001" in out and "98.00%" in out
    assert "batch_size=64" not in out
    code, out = run("runs", "list", "--status", "lost")
    assert code == 2 and out.startswith("error: unknown status 'lost'")


def test_show_prints_the_run_and_its_epochs(runs_env: Settings, engine: Engine) -> None:
    run_id = make_run(engine, {"hidden": 128}, [0.9512, 0.9734])
    finish(engine, run_id, 0.9734, 0.9801, VERSION)
    code, out = run("runs", "show", str(run_id))
    assert code == 0, out
    for text in ("succeeded", "hidden=128", "feedbeef", "torch 2.13.0", VERSION, "98.01%"):
        assert text in out
    epochs = [line for line in out.splitlines() if re.match(r"^\W*1\W+[12]\W", line)]
    assert len(epochs) == 2 and "95.12%" in epochs[0] and "97.34%" in epochs[1]

    code, out = run("runs", "show", "999")
    assert code == 1 and out.strip() == "error: no run with id 999"


def test_compare_shows_what_differs_and_marks_the_best(
    runs_env: Settings, engine: Engine, tmp_path: Path
) -> None:
    a = make_run(engine, {"optimizer": "adam", "batch_size": 64}, [0.97, 0.985])
    b = make_run(engine, {"optimizer": "sgd", "batch_size": 64}, [0.975, 0.99])
    finish(engine, a, 0.985, 0.984, VERSION)
    finish(engine, b, 0.99, 0.991, None)
    plot = tmp_path / "plots" / "curves.png"
    code, out = run("runs", "compare", str(a), str(b), "--plot", str(plot))
    assert code == 0, out
    rows = {line.split()[1]: line for line in out.splitlines() if line.count("│") >= 3}
    assert "adam" in rows["optimizer"] and "sgd" in rows["optimizer"]
    assert "batch_size" not in rows and "momentum" not in rows  # the same in both
    assert re.search(r"98\.50%\s.*99\.00% \*", rows["val"])  # the better one is marked
    assert "99.10% *" in rows["test"]

    with Image.open(plot) as image:
        assert image.format == "PNG" and image.size[0] > 500
    assert f"plot: {plot}" in out

    code, out = run("runs", "compare", str(a))
    assert code == 2 and "at least two run ids" in out
    code, out = run("runs", "compare", str(a), "77")
    assert code == 1 and out.strip() == "error: no run with id 77"
