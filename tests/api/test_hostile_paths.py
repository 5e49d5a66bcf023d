"""Issue 29, A4 and A5: paging and ids past the store's integers are bounded (no 500 on
SQLite or PostgreSQL), and no answer or page names a server path (the log keeps it)."""

from __future__ import annotations

import logging
from pathlib import Path

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient

from digitlab.app import create_app
from digitlab.store.testing_pg import PostgresServer
from tests.api.conftest import api_settings, b64, png, ready_settings, served_on_postgres
from tests.utils.served import serving

HUGE_PAGES = [
    "/history?page=368934881474191034",
    "/history?page=9223372036854775807",
    "/runs?id=1&id=9223372036854775808",
    "/runs?id=9223372036854775808&id=2",
    "/runs?id=-9223372036854775809&id=2",
]


def check_bounded(url: str) -> None:
    for path in HUGE_PAGES:
        r = httpx.get(url + path, timeout=30)
        assert r.status_code < 500, (path, r.status_code, r.text[:300])
    r = httpx.get(url + "/runs?id=1&id=9223372036854775808", timeout=30)
    assert r.status_code == 200 and "there is no run 9223372036854775808" in r.text
    r = httpx.get(url + "/history?page=368934881474191034", timeout=30)
    assert r.status_code == 200 and "The service is not ready" not in r.text


def test_huge_pages_and_ids_on_sqlite(tmp_path: Path, linear_models: Path) -> None:
    settings = ready_settings(tmp_path, f"sqlite:///{tmp_path / 'served.db'}", linear_models)
    with serving(settings, tmp_path) as served:
        check_bounded(served.url)


def test_huge_pages_and_ids_on_postgres(
    tmp_path: Path, pg_server: PostgresServer, linear_models: Path
) -> None:
    with served_on_postgres(pg_server, linear_models, tmp_path) as served:
        check_bounded(served.url)


def test_unknown_version_figure_names_no_folder(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="digitlab.web"):
        r = client.get("/models/no-such-version/curves.png")
    assert r.status_code == 404 and "no-such-version" in r.json()["detail"]
    folder = str(client.app.state.service.settings.model_dir)  # type: ignore[attr-defined]
    assert folder not in r.text and "/" not in r.json()["detail"].split("(")[0]
    assert any(folder in rec.getMessage() for rec in caplog.records)


def test_no_model_yet_names_no_folder(
    tmp_path: Path, db_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    from digitlab.store import db, migrate

    settings = api_settings(tmp_path, db_url)  # an empty model folder
    settings.model_dir.mkdir(parents=True)
    engine = db.make_engine(db_url)
    migrate.upgrade(engine)
    engine.dispose()
    folder = str(settings.model_dir)
    digit = {"image": b64(png(np.zeros((28, 28), np.uint8)))}
    with TestClient(create_app(settings), raise_server_exceptions=False) as c:
        with caplog.at_level(logging.WARNING, logger="digitlab.api"):
            answers = {
                "/readyz": c.get("/readyz"),
                "predict": c.post("/api/v1/predict", json=digit),
                "/api/v1/models/current": c.get("/api/v1/models/current"),
                "/predict": c.post("/predict", json=digit),
            }
        pages = {p: c.get(p) for p in ("/", "/history", "/models", "/monitor", "/runs")}
    for where, r in (answers | pages).items():
        assert folder not in r.text and str(tmp_path) not in r.text, (where, r.text[:500])
    assert answers["predict"].status_code == 503 and answers["/predict"].status_code == 503
    assert "no model" in answers["predict"].json()["detail"]
    assert "no model" in answers["/predict"].json()["error"]
    assert answers["/readyz"].status_code == 503
    assert "no model" in answers["/readyz"].json()["checks"]["model"]
    assert answers["/api/v1/models/current"].status_code == 503
    assert "no model" in answers["/api/v1/models/current"].json()["detail"]
    for where, r in pages.items():
        assert r.status_code == 200 and "no model in the model folder yet" in r.text, where
    # The path is still in the server's log.
    assert any(folder in rec.getMessage() for rec in caplog.records)
