"""Shared fixtures: settings pointing at the real MNIST files and a temporary model dir."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from digitlab.config import Settings
from digitlab.data import Split, load_split

ROOT = Path(__file__).resolve().parents[1]
MNIST_DIR = Path(os.environ.get("DIGITLAB_DATA_DIR", ROOT.parent / "shared" / "mnist")).resolve()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        data_dir=MNIST_DIR,
        fashion_download_dir=tmp_path / "fashion-download",
        model_dir=tmp_path / "models",
        report_dir=tmp_path / "reports",
        mirrors=[],
        database_url=f"sqlite:///{tmp_path / 'digitlab.db'}",  # never the repository's var/
        _env_file=None,  # type: ignore[call-arg]
    )


@pytest.fixture(scope="session")
def mnist_train() -> Split:
    return load_split("mnist", "train", Settings(data_dir=MNIST_DIR), download=False)


@pytest.fixture(scope="session")
def mnist_test() -> Split:
    return load_split("mnist", "test", Settings(data_dir=MNIST_DIR), download=False)


@pytest.fixture
def env(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The same settings, exported to the environment for CLI tests."""
    monkeypatch.setenv("DIGITLAB_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("DIGITLAB_MODEL_DIR", str(settings.model_dir))
    monkeypatch.setenv("DIGITLAB_REPORT_DIR", str(settings.report_dir))
    monkeypatch.setenv("DIGITLAB_FASHION_DOWNLOAD_DIR", str(settings.fashion_download_dir))
    monkeypatch.setenv("DIGITLAB_DATABASE_URL", settings.database_url)
    return settings
