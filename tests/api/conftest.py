"""API fixtures: the real app (`create_app`) over a real database, SQLite and PostgreSQL,
with a real (tiny) ONNX model, through `TestClient`."""

from __future__ import annotations

import base64
import io
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy import func, select

from digitlab.app import create_app
from digitlab.config import Settings
from digitlab.data import Split
from digitlab.store import db, migrate
from digitlab.store.models import InputData, Prediction
from digitlab.store.testing_pg import PostgresServer
from tests.conftest import MNIST_DIR
from tests.utils.onnx_model import make_model
from tests.utils.served import SERVE, Served, serving

ADMIN_TOKEN = "s3cret-test-token"
VIEWER_TOKEN = "v1ewer-test-token-7f3a"
FIRST, SECOND = "20261127-000000-mnist-linear", "20261127-000001-mnist-linear"


def api_settings(tmp_path: Path, database_url: str, **changes: object) -> Settings:
    values: dict[str, object] = {
        "data_dir": MNIST_DIR,
        "model_dir": tmp_path / "models",
        "report_dir": tmp_path / "reports",
        "database_url": database_url,
        "admin_token": ADMIN_TOKEN,
    }
    return Settings(**(values | changes), _env_file=None)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def linear_models(tmp_path_factory: pytest.TempPathFactory, mnist_train: Split) -> Path:
    """Two versions of the tiny linear model, the second current; tests copy the folder."""
    folder = tmp_path_factory.mktemp("linear-models")
    make_model(folder, mnist_train, version=FIRST)
    make_model(folder, mnist_train, version=SECOND)
    return folder


def ready_settings(tmp_path: Path, database_url: str, linear_models: Path) -> Settings:
    """Two model versions (the second current), a database at the current schema."""
    settings = api_settings(tmp_path, database_url)
    shutil.copytree(linear_models, settings.model_dir)
    engine = db.make_engine(database_url)
    migrate.upgrade(engine)
    engine.dispose()
    return settings


@pytest.fixture
def settings_api(tmp_path: Path, db_url: str, linear_models: Path) -> Settings:
    return ready_settings(tmp_path, db_url, linear_models)


@contextmanager
def served_on_postgres(
    pg_server: PostgresServer,
    linear_models: Path,
    folder: Path,
    command: list[str] = SERVE,
    **env: str,
) -> Iterator[Served]:
    """A real service process (see tests/utils/served.py) over a new database on
    `pg_server`, for tests that need real sockets; `env`: more DIGITLAB_ variables."""
    database = pg_server.create_database(f"served_{uuid.uuid4().hex[:8]}")
    with serving(ready_settings(folder, database, linear_models), folder, command, **env) as s:
        yield s


@pytest.fixture
def client(settings_api: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings_api), raise_server_exceptions=False) as c:
        yield c


@pytest.fixture(scope="module")
def viewer_settings(
    tmp_path_factory: pytest.TempPathFactory, pg_server: PostgresServer, linear_models: Path
) -> Settings:
    """DIGITLAB_VIEWER_TOKEN set, over one PostgreSQL database per test module: the guard
    runs before the store is read, so its tests need not each start from an empty one."""
    root = tmp_path_factory.mktemp("viewer")
    url = pg_server.create_database(f"viewer_{uuid.uuid4().hex[:12]}")
    settings = api_settings(root, url, viewer_token=VIEWER_TOKEN)
    shutil.copytree(linear_models, settings.model_dir)
    engine = db.make_engine(url)
    migrate.upgrade(engine)
    engine.dispose()
    return settings


@pytest.fixture
def viewer_client(viewer_settings: Settings) -> Iterator[TestClient]:
    """A fresh app and client (no cookies) over the module's guarded service."""
    with TestClient(create_app(viewer_settings), raise_server_exceptions=False) as c:
        yield c


@pytest.fixture(scope="module")
def viewer_stored(viewer_settings: Settings, mnist_test: Split) -> dict[str, int]:
    """One prediction and one reading in the guarded service's store: their ids fill the
    routes' paths."""
    number = np.concatenate([mnist_test.images[0], mnist_test.images[1]], axis=1)
    with TestClient(create_app(viewer_settings)) as c:
        r = c.post("/api/v1/predict", json={"image": b64(png(mnist_test.images[0]))})
        read = c.post("/api/v1/read", json={"image": b64(png(number))})
    assert r.status_code == 200, r.text
    assert read.status_code == 200, read.text
    return {
        "prediction_id": r.json()["prediction_id"],
        "input_id": r.json()["input_data_id"],
        "reading_id": read.json()["reading_id"],
    }


def png(pixels: npt.NDArray[np.uint8], fmt: str = "PNG") -> bytes:
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format=fmt)
    return out.getvalue()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def counts(settings: Settings) -> tuple[int, int]:
    """Rows in input_data and predictions."""
    engine = db.make_engine(settings.database_url)
    try:
        with db.transaction(engine) as s:
            inputs = s.scalar(select(func.count()).select_from(InputData)) or 0
            predictions = s.scalar(select(func.count()).select_from(Prediction)) or 0
    finally:
        engine.dispose()
    return inputs, predictions
