"""Experiment fixtures: every test that takes `db_url` (tests/conftest.py) runs on SQLite
and on a real PostgreSQL server (never a mock), with the environment the commands read."""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from digitlab.config import Settings
from digitlab.registry import versions as registry
from digitlab.registry.lifecycle import activate_model
from digitlab.store import db, migrate
from digitlab.store.testing_pg import PostgresServer
from tests.conftest import MNIST_DIR


def serving_settings(
    tmp_path: Path, pg_server: PostgresServer, model: registry.ModelVersion, **changes: Any
) -> Settings:
    """A fresh, migrated PostgreSQL database and a model folder whose serving version is
    a copy of `model`: where a feedback-loop test starts."""
    url = pg_server.create_database(f"test_{uuid.uuid4().hex[:12]}")
    engine = db.make_engine(url)
    migrate.upgrade(engine)
    engine.dispose()
    values: dict[str, Any] = {
        "data_dir": MNIST_DIR,
        "model_dir": tmp_path / "models",
        "report_dir": tmp_path / "reports",
        "database_url": url,
    }
    settings = Settings(**(values | changes), _env_file=None)  # type: ignore[arg-type]
    shutil.copytree(model.path, settings.model_dir / model.version)
    activate_model(settings, model.version)
    return settings


@pytest.fixture
def runs_env(
    engine: Engine, db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Settings:
    """Settings for CLI tests on a migrated database and an empty model folder, exported
    to the environment the commands read."""
    values = {
        "DATA_DIR": str(MNIST_DIR),
        "MODEL_DIR": str(tmp_path / "models"),
        "REPORT_DIR": str(tmp_path / "reports"),
        "DATABASE_URL": db_url,
    }
    for key, value in values.items():
        monkeypatch.setenv(f"DIGITLAB_{key}", value)
    return Settings(_env_file=None)  # type: ignore[call-arg]
