"""Store fixtures: every test that takes `db_url` (tests/conftest.py) runs on SQLite and
on a real PostgreSQL server that the session starts itself (never a mock)."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Engine

from digitlab.config import Settings
from digitlab.data import Split
from digitlab.inference.runtime import OnnxClassifier
from digitlab.registry.versions import resolve
from tests.conftest import MNIST_DIR
from tests.utils.onnx_model import make_model


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory: pytest.TempPathFactory, mnist_train: Split) -> Path:
    folder = tmp_path_factory.mktemp("models")
    make_model(folder, mnist_train)
    return folder


@pytest.fixture(scope="session")
def classifier(model_dir: Path) -> OnnxClassifier:
    return OnnxClassifier(resolve(model_dir), threads=1)


@pytest.fixture
def store_env(db_url: str, model_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Settings for CLI tests, exported to the environment the commands read."""
    values = {"DATA_DIR": str(MNIST_DIR), "MODEL_DIR": str(model_dir), "DATABASE_URL": db_url}
    for key, value in values.items():
        monkeypatch.setenv(f"DIGITLAB_{key}", value)
    return Settings(_env_file=None)  # type: ignore[call-arg]


@pytest.fixture
def cli_env(store_env: Settings, engine: Engine) -> Settings:
    """`store_env` on a database already at the current schema (as a deployment has it)."""
    return store_env
