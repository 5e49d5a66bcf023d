"""Sweeps: the file format and its checks, the loop's rules (a failure goes on, Ctrl-C
stops after the current run, twice stops at once), and a real two-run sweep."""

from __future__ import annotations

import os
import re
import signal
import time
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from digitlab.cli.main import app
from digitlab.config import Settings
from digitlab.experiments.sweep import (
    CHOICES,
    SweepError,
    load_sweep,
    parse_sweep,
    run_sweep,
    stop_after_current,
)
from digitlab.ml import pipeline
from digitlab.ml.recipes import RECIPES, TrainConfig
from digitlab.registry import versions as registry
from digitlab.store import db, runs

ROOT = Path(__file__).resolve().parents[2]
runner = CliRunner()


def test_the_example_is_optimizer_by_batch_by_extra_layer() -> None:
    sweep = load_sweep(ROOT / "sweeps" / "example.toml")
    assert sweep.name == "example" and len(sweep.configs) == 8
    combos = {(c.optimizer, c.batch_size, c.hidden) for c in sweep.configs}
    assert combos == {(o, b, h) for o in ("adam", "sgd") for b in (64, 128) for h in (0, 128)}
    for c in sweep.configs:
        assert c.recipe == "fast" and c.epochs == RECIPES["fast"].epochs
        assert c.lr == (0.001 if c.optimizer == "adam" else RECIPES["fast"].lr)


def test_runs_list_base_and_recipe_per_run() -> None:
    sweep = parse_sweep(
        {"base": {"epochs": 1}, "runs": [{"lr": 0.05}, {"recipe": "reference", "seed": 2}]},
        default_name="file",
    )
    first, second = sweep.configs
    assert sweep.name == "file"
    assert first == RECIPES["fast"].replace(epochs=1, lr=0.05)
    assert second == RECIPES["reference"].replace(epochs=1, seed=2)


def test_ints_are_accepted_for_floats_and_grid_order_is_kept() -> None:
    sweep = parse_sweep({"grid": {"lr": [1, 0.5], "seed": [0, 1]}}, default_name="g")
    assert [(c.lr, c.seed) for c in sweep.configs] == [(1, 0), (1, 1), (0.5, 0), (0.5, 1)]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"grid": {"optimiser": ["adam"]}}, "unknown setting 'optimiser'"),
        ({"runs": [{"batch": 64}]}, "unknown setting 'batch'"),
        ({"grid": {"seed": [0]}, "epochs": 3}, "unknown key 'epochs'"),
        ({"recipe": "fast"}, "give a [grid] table, a list of [[runs]], or both"),
        ({"grid": {"batch_size": 64}}, "batch_size must be a non-empty list"),
        ({"grid": {"batch_size": []}}, "batch_size must be a non-empty list"),
        ({"runs": [{"batch_size": "64"}]}, "batch_size must be int, not '64'"),
        ({"runs": [{"epochs": True}]}, "epochs must be int, not True"),
        ({"runs": [{"lr": "fast"}]}, "lr must be float"),
        ({"runs": [{"optimizer": "rmsprop"}]}, "optimizer 'rmsprop' is not one of sgd, adam"),
        ({"runs": [{"dataset": "cifar10"}]}, "dataset 'cifar10' is not one of mnist"),
        ({"runs": [{"hidden": -1}]}, "hidden must be >= 0"),
        ({"runs": [{"epochs": 0}]}, "epochs must be > 0"),
        ({"runs": [{"recipe": "turbo"}]}, "unknown recipe 'turbo'"),
        ({"runs": []}, "must be a non-empty list"),
        ({"runs": "adam"}, "must be a non-empty list"),
    ],
)
def test_bad_sweeps_are_refused_naming_the_problem(data: dict[str, Any], message: str) -> None:
    with pytest.raises(SweepError, match=rf"^sweep\.toml.*{re.escape(message)}"):
        parse_sweep(data, default_name="x", where="sweep.toml")


def test_the_checked_choices_are_what_training_accepts() -> None:
    import torch

    from digitlab.ml.model import ARCHITECTURES
    from digitlab.ml.train import make_optimizer, make_schedule

    assert set(CHOICES["arch"]) == set(ARCHITECTURES)
    net = torch.nn.Linear(2, 2)
    for name in CHOICES["optimizer"]:
        opt = make_optimizer(net, TrainConfig(optimizer=name))
        for schedule in CHOICES["schedule"]:
            make_schedule(opt, TrainConfig(schedule=schedule), total_steps=10)
    with pytest.raises(ValueError, match="unknown optimizer"):
        make_optimizer(net, TrainConfig(optimizer="rmsprop"))


def test_a_bad_file_is_one_readable_error(tmp_path: Path) -> None:
    broken = tmp_path / "broken.toml"
    broken.write_text("[grid\nseed = [0]")
    with pytest.raises(SweepError, match=r"broken\.toml: not valid TOML"):
        load_sweep(broken)
    with pytest.raises(SweepError, match="cannot read the sweep file"):
        load_sweep(tmp_path / "missing.toml")


CONFIGS = [TrainConfig(seed=s) for s in range(3)]


def test_a_failed_run_does_not_stop_the_sweep() -> None:
    def train_one(cfg: TrainConfig) -> None:
        if cfg.seed == 1:
            raise RuntimeError("diverged")

    outcomes = run_sweep(CONFIGS, train_one)
    assert [o.status for o in outcomes] == ["succeeded", "failed", "succeeded"]
    assert outcomes[1].error == "RuntimeError: diverged"


def test_a_fatal_error_stops_the_sweep() -> None:
    def train_one(cfg: TrainConfig) -> None:
        raise db.StoreError("database gone")

    with pytest.raises(db.StoreError):
        run_sweep(CONFIGS, train_one, fatal=(db.StoreError,))


def ctrl_c() -> None:
    # Without the sweep's handler SIGINT would stop pytest itself: fail instead.
    assert signal.getsignal(signal.SIGINT) is not signal.default_int_handler
    os.kill(os.getpid(), signal.SIGINT)
    time.sleep(0.05)  # the handler runs in this (the main) thread at the next bytecode


def test_first_ctrl_c_finishes_the_current_run_then_stops() -> None:
    trained: list[int] = []
    notices: list[str] = []

    def train_one(cfg: TrainConfig) -> None:
        ctrl_c()
        trained.append(cfg.seed)  # still runs: the first Ctrl-C does not interrupt

    before = signal.getsignal(signal.SIGINT)
    with stop_after_current(lambda: notices.append("stopping")) as stop_requested:
        outcomes = run_sweep(CONFIGS, train_one, stop_requested=stop_requested)
    assert trained == [0] and notices == ["stopping"]
    assert [o.status for o in outcomes] == ["succeeded"]
    assert signal.getsignal(signal.SIGINT) is before  # Ctrl-C works as usual again


def test_second_ctrl_c_interrupts_the_current_run() -> None:
    trained: list[int] = []

    def train_one(cfg: TrainConfig) -> None:
        ctrl_c()
        ctrl_c()
        trained.append(cfg.seed)

    with stop_after_current(lambda: None) as stop_requested:
        outcomes = run_sweep(CONFIGS, train_one, stop_requested=stop_requested)
    assert trained == [] and [o.status for o in outcomes] == ["interrupted"]


def write_sweep(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.toml"
    path.write_text('name = "tiny"\nrecipe = "fast"\n[grid]\nhidden = [0, 16]\n')
    return path


def sweep_runs(settings: Settings) -> list[runs.RunRecord]:
    with db.transaction(db.make_engine(settings.database_url)) as s:
        found = runs.list_runs(s)
        return runs.get_runs(s, ids=[r.id for r in reversed(found)])


def test_a_sweep_records_each_run(runs_env: Settings, tmp_path: Path) -> None:
    result = runner.invoke(app, ["sweep", str(write_sweep(tmp_path)), "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "2 of 2 runs succeeded" in result.output
    found = sweep_runs(runs_env)
    assert [r.status for r in found] == ["succeeded", "succeeded"]
    assert [r.config["hidden"] for r in found] == [0, 16]
    assert len({r.sweep for r in found}) == 1
    assert (found[0].sweep or "").startswith("tiny-")
    versions = [r.model_version or "" for r in found]
    assert sorted(versions) == sorted(v.version for v in registry.list_versions(runs_env.model_dir))
    # Runs of a sweep are not promoted; only the very first version becomes the default.
    assert registry.current_version(runs_env.model_dir) == versions[0]


def test_ctrl_c_in_a_sweep_marks_the_run_and_starts_no_other(
    runs_env: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def interrupt(*args: Any, **kwargs: Any) -> None:
        raise KeyboardInterrupt  # as a second Ctrl-C does in the middle of a run

    monkeypatch.setattr(pipeline, "fit", interrupt)
    result = runner.invoke(app, ["sweep", str(write_sweep(tmp_path)), "--dry-run"])
    assert result.exit_code == 130, result.output
    assert "0 of 2 runs succeeded" in result.output
    assert [r.status for r in sweep_runs(runs_env)] == ["interrupted"]


def test_a_bad_sweep_file_is_a_usage_error(runs_env: Settings, tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text("[grid]\nbatch = [64]\n")
    result = runner.invoke(app, ["sweep", str(path)])
    assert result.exit_code == 2
    assert result.output.startswith("error:") and "unknown setting 'batch'" in result.output
