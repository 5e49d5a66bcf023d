"""`models promote`: the registry pointer, the database's active flag and the promotion
history move together, and a running service answers with the promoted model without
a restart (it watches the same pointer)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select
from typer.testing import CliRunner

from digitlab.app import create_app
from digitlab.cli.main import app
from digitlab.config import Settings
from digitlab.data import Split
from digitlab.registry import versions as registry
from digitlab.registry.lifecycle import current_user
from digitlab.store import db, runs
from digitlab.store.models import ModelRow
from tests.utils.onnx_model import make_model

FIRST, SECOND = "20261127-000000-mnist-linear", "20261127-000001-mnist-linear"
runner = CliRunner()


@pytest.fixture(scope="session")
def two_models(tmp_path_factory: pytest.TempPathFactory, mnist_train: Split) -> Path:
    folder = tmp_path_factory.mktemp("two-models")
    make_model(folder, mnist_train, version=FIRST)
    make_model(folder, mnist_train, version=SECOND)  # the current one
    return folder


@pytest.fixture
def models_env(runs_env: Settings, two_models: Path) -> Settings:
    shutil.copytree(two_models, runs_env.model_dir)
    return runs_env


def active(engine: Engine) -> list[str]:
    with db.transaction(engine) as s:
        return list(s.scalars(select(ModelRow.version).where(ModelRow.is_active)))


def history(engine: Engine) -> list[tuple[str, str]]:
    with db.transaction(engine) as s:
        return [(p.version, p.promoted_by) for p in runs.promotions(s)]


def test_promote_switches_the_serving_model_and_records_who(
    models_env: Settings, engine: Engine
) -> None:
    result = runner.invoke(app, ["models", "promote", FIRST, "--by", "alice"])
    assert result.exit_code == 0, result.output
    assert f"promoted {FIRST} (by alice); it was {SECOND}" in result.output
    assert registry.resolve(models_env.model_dir).version == FIRST
    assert active(engine) == [FIRST]
    assert history(engine) == [(FIRST, "alice")]

    result = runner.invoke(app, ["models", "promote", SECOND])  # by: the OS user
    assert result.exit_code == 0, result.output
    assert registry.resolve(models_env.model_dir).version == SECOND
    assert active(engine) == [SECOND]
    assert history(engine) == [(SECOND, current_user()), (FIRST, "alice")]

    result = runner.invoke(app, ["models", "history"])
    assert result.exit_code == 0, result.output
    assert result.output.index(SECOND) < result.output.index(FIRST)  # newest first
    assert "alice" in result.output


def test_promoting_an_unknown_version_changes_nothing(models_env: Settings, engine: Engine) -> None:
    result = runner.invoke(app, ["models", "promote", "20990101-000000-mnist-none"])
    assert result.exit_code == 1
    assert result.output.startswith("error: no model version '20990101-000000-mnist-none'")
    assert registry.current_version(models_env.model_dir) == SECOND
    assert history(engine) == [] and active(engine) == []


def test_models_use_is_recorded_as_a_promotion_too(models_env: Settings, engine: Engine) -> None:
    result = runner.invoke(app, ["models", "use", FIRST])
    assert result.exit_code == 0, result.output
    assert history(engine) == [(FIRST, current_user())]


def test_a_running_service_serves_the_promoted_model(models_env: Settings) -> None:
    with TestClient(create_app(models_env)) as client:
        assert client.get("/api/v1/models/current").json()["version"] == SECOND
        result = runner.invoke(app, ["models", "promote", FIRST, "--by", "alice"])
        assert result.exit_code == 0, result.output
        # The same service object, no restart: it noticed the registry pointer move.
        assert client.get("/api/v1/models/current").json()["version"] == FIRST
