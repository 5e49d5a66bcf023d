"""Model versions over HTTP, and switching the serving model without a restart, also while
requests keep coming."""

from __future__ import annotations

import itertools
import json
import threading
from collections import Counter
from pathlib import Path

import numpy as np
from fastapi.testclient import TestClient

from digitlab.app import create_app
from digitlab.config import Settings
from digitlab.data import Split
from digitlab.registry import versions as registry
from digitlab.store import db
from digitlab.store.models import ModelRow, Promotion
from tests.api.conftest import ADMIN_TOKEN, FIRST, SECOND, b64, png

AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def test_list_and_current(client: TestClient) -> None:
    listed = client.get("/api/v1/models").json()
    assert [m["version"] for m in listed] == [FIRST, SECOND]
    assert [m["current"] for m in listed] == [False, True]
    assert [m["serving"] for m in listed] == [False, True]
    current = client.get("/api/v1/models/current").json()
    assert current["version"] == SECOND and current["dataset"] == "mnist"


def test_activate_needs_the_token(client: TestClient, settings_api: Settings) -> None:
    r = client.post(f"/api/v1/models/{FIRST}/activate")
    assert r.status_code == 401 and "Bearer" in r.json()["detail"]
    r = client.post(f"/api/v1/models/{FIRST}/activate", headers={"Authorization": "Bearer no"})
    assert r.status_code == 401
    r = client.post("/api/v1/models/nope/activate", headers=AUTH)
    assert r.status_code == 404 and "nope" in r.json()["detail"]
    assert registry.current_version(settings_api.model_dir) == SECOND


def test_activate_is_off_without_a_token(settings_api: Settings) -> None:
    off = settings_api.model_copy(update={"admin_token": None})
    with TestClient(create_app(off)) as client:
        r = client.post(f"/api/v1/models/{FIRST}/activate", headers=AUTH)
    assert r.status_code == 403 and "DIGITLAB_ADMIN_TOKEN" in r.json()["detail"]
    assert registry.current_version(settings_api.model_dir) == SECOND


def test_activate_switches_without_restart(
    client: TestClient, settings_api: Settings, mnist_test: Split
) -> None:
    body = {"image": b64(png(mnist_test.images[0]))}
    assert client.post("/api/v1/predict", json=body).json()["model_version"] == SECOND
    r = client.post(f"/api/v1/models/{FIRST}/activate", headers=AUTH)
    assert r.status_code == 200 and r.json()["serving"], r.text
    assert client.post("/api/v1/predict", json=body).json()["model_version"] == FIRST
    assert client.get("/api/v1/models/current").json()["version"] == FIRST
    assert registry.current_version(settings_api.model_dir) == FIRST
    engine = db.make_engine(settings_api.database_url)
    with db.transaction(engine) as s:
        active = s.query(ModelRow.version).filter(ModelRow.is_active).all()
        promoted = s.query(ModelRow.version, Promotion.promoted_by).join(Promotion).all()
    assert active == [(FIRST,)] and promoted == [(FIRST, "api")]
    # `digitlab models use` (the same lifecycle function) is picked up as well.
    registry.set_current(settings_api.model_dir, SECOND)
    assert client.post("/api/v1/predict", json=body).json()["model_version"] == SECOND


def test_switching_under_load_fails_no_request(
    client: TestClient, settings_api: Settings, mnist_test: Split
) -> None:
    body = {"image": b64(png(mnist_test.images[0]))}
    seen: list[tuple[int, str]] = []
    stop = threading.Event()

    def hammer() -> None:
        while not stop.is_set() and len(seen) < 5000:
            r = client.post("/api/v1/predict", json=body)
            seen.append((r.status_code, r.json().get("model_version", r.text)))

    workers = [threading.Thread(target=hammer) for _ in range(3)]
    for w in workers:
        w.start()
    try:
        for k in range(6):
            target = FIRST if k % 2 == 0 else SECOND
            r = client.post(f"/api/v1/models/{target}/activate", headers=AUTH)
            assert r.status_code == 200, r.text
            before = len(seen)
            while len(seen) < before + 10 and all(w.is_alive() for w in workers):
                threading.Event().wait(0.01)
    finally:
        stop.set()
        for w in workers:
            w.join()
    statuses = Counter(status for status, _ in seen)
    assert statuses == {200: len(seen)}, statuses
    versions = [v for _, v in seen]
    switches = sum(a != b for a, b in itertools.pairwise(versions))
    assert set(versions) == {FIRST, SECOND} and switches >= 3


def test_confusion_matrix_comes_from_the_card_without_the_test_set(
    settings_api: Settings, tmp_path: Path
) -> None:
    """The api container has no MNIST files: the trainer's matrix in the card is enough."""
    card_path = settings_api.model_dir / SECOND / registry.CARD_FILE
    card = json.loads(card_path.read_text())
    card["metrics"]["test_confusion"] = (np.eye(10, dtype=int) * 1000).tolist()
    card_path.write_text(json.dumps(card))
    no_data = settings_api.model_copy(update={"data_dir": tmp_path / "no-mnist-here"})
    with TestClient(create_app(no_data), raise_server_exceptions=False) as client:
        r = client.get(f"/models/{SECOND}/confusion.png")
        assert r.status_code == 200 and r.content.startswith(b"\x89PNG"), r.text[:200]
        # A card without the matrix and no test set: a clear 404, not a 500.
        r = client.get(f"/models/{FIRST}/confusion.png")
        assert r.status_code == 404 and "no confusion matrix yet" in r.json()["detail"]
