"""`digitlab train` records every run: a success with its config, code and curves, a crash
as failed and Ctrl-C as interrupted (never lost), on both backends. Training is a
one-batch dry run; failures are injected where the pipeline would really fail."""

from __future__ import annotations

import os
import re
import shutil
import signal
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from digitlab.cli.main import app
from digitlab.config import Settings
from digitlab.ml import pipeline
from digitlab.registry import versions as registry
from digitlab.store import db, runs
from digitlab.store.models import ModelRow
from digitlab.store.testing_pg import PostgresServer
from tests.conftest import MNIST_DIR, ROOT

runner = CliRunner()


def recorded(settings: Settings) -> list[runs.RunRecord]:
    engine = db.make_engine(settings.database_url)
    with db.transaction(engine) as s:
        ids = [r.id for r in runs.list_runs(s)]
        return runs.get_runs(s, ids=ids)


def test_a_successful_run_is_recorded_with_its_model(runs_env: Settings) -> None:
    result = runner.invoke(app, ["train", "--dry-run", "--seed", "3", "--lr", "0.05"])
    assert result.exit_code == 0, result.output
    (run,) = recorded(runs_env)
    model = registry.resolve(runs_env.model_dir)
    assert f"recorded as run {run.id}" in result.output

    assert run.status == "succeeded" and run.error is None
    assert (run.recipe, run.dataset, run.seed) == ("fast", "mnist", 3)
    assert run.config == model.card["config"]
    assert run.config["lr"] == 0.05 and run.config["dry_run"] is True
    # The commit itself may move while the test runs (a shared checkout); its form may not.
    if shutil.which("git") and (ROOT / ".git").exists():
        assert re.fullmatch(r"[0-9a-f]{40}(-dirty)?", run.git_commit or "")
    else:  # a tree without git (an unpacked archive, or no git installed): none, not a guess
        assert run.git_commit is None
    assert run.libraries == model.card["libraries"] and "torch" in run.libraries
    assert run.model_version == model.version
    assert run.metrics == model.card["metrics"]
    assert run.finished_at is not None and run.finished_at >= run.started_at

    (epoch,) = run.epochs  # a dry run is one epoch of one batch
    history = model.card["history"][0]
    assert (epoch.member, epoch.epoch) == (0, 1)
    assert epoch.train_loss == pytest.approx(history["train_loss"])
    assert epoch.val_acc == pytest.approx(history["val_acc"])
    assert epoch.lr == pytest.approx(history["lr"]) and epoch.seconds > 0

    engine = db.make_engine(runs_env.database_url)
    with db.transaction(engine) as s:  # the run's model is the active one, as trained
        assert s.scalars(select(ModelRow.version).where(ModelRow.is_active)).all() == [
            model.version
        ]


def fail_at_export(*args: Any, **kwargs: Any) -> dict[str, Any]:
    raise RuntimeError("disk full")


def test_a_crash_is_recorded_as_failed_with_its_epochs(
    runs_env: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    # After the training loop: the run has its curves when it dies.
    monkeypatch.setattr(pipeline, "test_metrics", fail_at_export)
    result = runner.invoke(app, ["train", "--dry-run"])
    assert result.exit_code != 0
    assert isinstance(result.exception, RuntimeError)
    (run,) = recorded(runs_env)
    assert run.status == "failed" and run.error == "RuntimeError: disk full"
    assert run.finished_at is not None and run.model_version is None
    assert len(run.epochs) == 1
    assert registry.list_versions(runs_env.model_dir) == []  # nothing half-published


def interrupt(*args: Any, **kwargs: Any) -> None:
    raise KeyboardInterrupt


def test_ctrl_c_is_recorded_as_interrupted(
    runs_env: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pipeline, "fit", interrupt)
    result = runner.invoke(app, ["train", "--dry-run"])
    assert result.exit_code == 130  # as a shell reports Ctrl-C
    (run,) = recorded(runs_env)
    assert run.status == "interrupted" and "Ctrl-C" in (run.error or "")
    assert run.finished_at is not None and run.epochs == []


def test_sigterm_is_recorded_as_interrupted_too(
    runs_env: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = signal.getsignal(signal.SIGTERM)

    def terminated(*args: Any, **kwargs: Any) -> None:
        # Without a handler of its own SIGTERM would end pytest itself: fail instead.
        assert signal.getsignal(signal.SIGTERM) is not before, "no SIGTERM handler"
        os.kill(os.getpid(), signal.SIGTERM)  # as `docker stop` or systemd would
        time.sleep(5)  # the handler raises in this (the main) thread at once

    monkeypatch.setattr(pipeline, "fit", terminated)
    result = runner.invoke(app, ["train", "--dry-run"])
    assert result.exit_code == 130
    (run,) = recorded(runs_env)
    assert run.status == "interrupted" and run.error == "terminated (SIGTERM)"
    assert signal.getsignal(signal.SIGTERM) is before


def test_a_fresh_machine_gets_the_embedded_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Runs are the point: `train` creates the default SQLite file rather than lose one
    (registering a model elsewhere still never creates a database)."""
    monkeypatch.chdir(tmp_path)  # the default URL is relative: var/digitlab.db
    monkeypatch.delenv("DIGITLAB_DATABASE_URL", raising=False)
    monkeypatch.setenv("DIGITLAB_DATA_DIR", str(MNIST_DIR))
    monkeypatch.setenv("DIGITLAB_MODEL_DIR", str(tmp_path / "models"))
    monkeypatch.setattr(pipeline, "fit", interrupt)  # the run itself does not matter here
    runner.invoke(app, ["train", "--dry-run"])
    assert (tmp_path / "var" / "digitlab.db").is_file()
    (run,) = recorded(Settings(_env_file=None))  # type: ignore[call-arg]
    assert run.status == "interrupted"


def test_an_unmigrated_postgres_fails_before_training(
    pg_server: PostgresServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DIGITLAB_DATABASE_URL", pg_server.create_database("unmigrated"))
    monkeypatch.setenv("DIGITLAB_MODEL_DIR", str(tmp_path / "models"))
    monkeypatch.setenv("DIGITLAB_DATA_DIR", str(MNIST_DIR))
    result = runner.invoke(app, ["train", "--dry-run"])
    assert result.exit_code == 1
    assert result.output.startswith("error:") and "digitlab db upgrade" in result.output
    assert not (tmp_path / "models").exists()  # refused before a minute of training
