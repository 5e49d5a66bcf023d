"""Shared fixtures: settings pointing at the real MNIST files and a temporary model dir,
databases on SQLite and on a real PostgreSQL server, and one trained model per session."""

from __future__ import annotations

import fcntl
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from digitlab.config import Settings
from digitlab.data import Split, load_split
from digitlab.registry.versions import ModelVersion, list_versions
from digitlab.store.testing_pg import PostgresServer

ROOT = Path(__file__).resolve().parents[1]
MNIST_DIR = Path(os.environ.get("DIGITLAB_DATA_DIR", ROOT.parent / "shared" / "mnist")).resolve()


def require_package(path: Path, package: str) -> None:
    """Fail with what to install when a test needs a Debian package this machine lacks
    (`make test` installs them itself through scripts/system-packages)."""
    if not path.exists():
        pytest.fail(f"{path} is missing: apt-get install {package} (make test installs it)")


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        data_dir=MNIST_DIR,
        fashion_download_dir=tmp_path / "fashion-download",
        negatives_dir=tmp_path / "negatives",
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


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PostgresServer]:
    with PostgresServer.start() as server:
        yield server


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A new, empty database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"
    server: PostgresServer = request.getfixturevalue("pg_server")
    return server.create_database(f"test_{uuid.uuid4().hex[:12]}")


@pytest.fixture(scope="session")
def trained_fast_model(tmp_path_factory: pytest.TempPathFactory) -> ModelVersion:
    """The `fast` recipe trained once per test run (about 40 s on 2 cores), for tests that
    need a real model's accuracy; its folder is the model dir of the returned version.
    Tests only read or copy it. Under pytest-xdist the workers share one: the first trains
    it while the others wait on the lock, then they load it."""
    from digitlab.ml.pipeline import train_and_register
    from digitlab.ml.recipes import get_recipe

    # Every worker's base temp lies in one per-run folder; without xdist, ours is fine.
    shared = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        shared = shared.parent
    root = shared / "trained-fast"
    with (shared / "trained-fast.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        versions = list_versions(root / "models")
        if versions:
            return versions[0]
        settings = Settings(
            data_dir=MNIST_DIR,
            model_dir=root / "models",
            negatives_dir=root / "negatives",
            report_dir=root / "reports",
            database_url=f"sqlite:///{root / 'unused.db'}",
            _env_file=None,  # type: ignore[call-arg]
        )
        return train_and_register(get_recipe("fast"), settings)


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    """`db_url` at the current schema, as `digitlab db upgrade` leaves it."""
    from digitlab.store import db, migrate

    engine = db.make_engine(db_url)
    migrate.upgrade(engine)
    yield engine
    engine.dispose()
