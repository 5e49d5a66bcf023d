"""Liveness and readiness, and a database outage: predict answers 503 with a clear
message, /readyz turns red, and both recover by themselves when the database is back."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from digitlab.app import create_app
from digitlab.config import Settings
from digitlab.data import Split
from digitlab.store import db, migrate
from digitlab.store.testing_pg import PostgresServer
from tests.api.conftest import api_settings, b64, counts, png


def test_healthz_and_readyz(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok", "checks": {}}
    r = client.get("/readyz")
    assert r.status_code == 200, r.text
    assert r.json()["checks"]["database"] == "ok"
    assert r.json()["checks"]["model"].startswith("ok")


def test_not_ready_without_a_model(settings_api: Settings, mnist_test: Split) -> None:
    (settings_api.model_dir / "CURRENT").unlink()
    with TestClient(create_app(settings_api)) as client:
        r = client.get("/readyz")
        assert r.status_code == 503 and "digitlab train" in r.json()["checks"]["model"]
        r = client.post("/api/v1/predict", json={"image": b64(png(mnist_test.images[0]))})
        assert r.status_code == 503 and "no model" in r.json()["detail"]
        assert client.get("/healthz").status_code == 200


@pytest.fixture(scope="module")
def own_pg() -> Iterator[PostgresServer]:
    # Its own server, stopped and started by the tests: the shared one must survive.
    with PostgresServer.start(durable=True) as server:  # commits survive its crash
        yield server


@pytest.fixture
def own_settings(own_pg: PostgresServer, tmp_path: Path, linear_models: Path) -> Settings:
    """Settings over a new database on `own_pg`, at the current schema."""
    settings = api_settings(tmp_path, own_pg.create_database(f"own_{uuid.uuid4().hex[:8]}"))
    shutil.copytree(linear_models, settings.model_dir)
    migrate.upgrade(db.make_engine(settings.database_url))
    return settings


@pytest.fixture
def body(mnist_test: Split) -> dict[str, str]:
    return {"image": b64(png(mnist_test.images[0]))}


def test_database_outage_and_recovery(
    own_pg: PostgresServer, own_settings: Settings, body: dict[str, str]
) -> None:
    with TestClient(create_app(own_settings), raise_server_exceptions=False) as client:
        assert client.post("/api/v1/predict", json=body).status_code == 200
        own_pg.stop(mode="immediate")
        for _ in range(3):  # pooled connections are dead: every try is a clean 503
            r = client.post("/api/v1/predict", json=body)
            assert r.status_code == 503, r.text
            assert (
                "unavailable" in r.json()["detail"] and "nothing was stored" in r.json()["detail"]
            )
        r = client.get("/readyz")
        assert r.status_code == 503 and r.json()["checks"]["model"].startswith("ok")
        assert r.json()["checks"]["database"] != "ok"
        assert client.get("/healthz").status_code == 200
        own_pg.launch()
        assert client.get("/readyz").status_code == 200
        r = client.post("/api/v1/predict", json=body)
        assert r.status_code == 200, r.text
    assert counts(own_settings) == (2, 2)


def test_service_starts_while_the_database_is_down(
    own_pg: PostgresServer, own_settings: Settings, body: dict[str, str]
) -> None:
    own_pg.stop()
    with TestClient(create_app(own_settings), raise_server_exceptions=False) as client:
        assert client.get("/readyz").status_code == 503
        assert client.post("/api/v1/predict", json=body).status_code == 503
        own_pg.launch()
        assert client.get("/readyz").status_code == 200
        assert client.post("/api/v1/predict", json=body).status_code == 200
    assert counts(own_settings) == (1, 1)


def test_a_database_restart_between_requests_fails_none(
    own_pg: PostgresServer, own_settings: Settings, body: dict[str, str]
) -> None:
    # The writer keeps one connection open; a restart ends it while it is idle, and the
    # next request must reconnect rather than answer 503.
    with TestClient(create_app(own_settings), raise_server_exceptions=False) as client:
        for mode in ("fast", "immediate"):
            assert client.post("/api/v1/predict", json=body).status_code == 200
            own_pg.stop(mode=mode)
            own_pg.launch()
            r = client.post("/api/v1/predict", json=body)
            assert r.status_code == 200, r.text
    assert counts(own_settings) == (4, 4)
