"""Experiment fixtures: every test that takes `db_url` (tests/conftest.py) runs on SQLite
and on a real PostgreSQL server (never a mock), with the environment the commands read."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Engine

from digitlab.config import Settings
from tests.conftest import MNIST_DIR


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
