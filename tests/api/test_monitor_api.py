"""GET /api/v1/monitor over HTTP on SQLite and PostgreSQL, with the tiny linear model
(whose card predates the monitor: the fallbacks), and the drift gauge on /metrics."""

from __future__ import annotations

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from digitlab.api import monitor
from digitlab.config import Settings
from digitlab.data import Split
from digitlab.data.rotated import rotate
from digitlab.store import db
from digitlab.store.models import Feedback
from tests.api.conftest import FIRST, SECOND, b64, png


def send(client: TestClient, images: np.ndarray) -> list[int]:
    """Predict `images` in batches; the prediction ids."""
    ids = []
    for start in range(0, len(images), 200):
        body = {"images": [{"image": b64(png(im))} for im in images[start : start + 200]]}
        r = client.post("/api/v1/predict/batch", json=body)
        assert r.status_code == 200, r.text
        ids += [p["prediction_id"] for p in r.json()["predictions"]]
    return ids


def test_an_empty_store_and_one_prediction(client: TestClient, mnist_test: Split) -> None:
    r = client.get("/api/v1/monitor")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["window"] == "day" and body["waiting_for_review"] == 0
    serving, previous = body["versions"]
    assert (serving["version"], serving["role"]) == (SECOND, "serving")
    assert (previous["version"], previous["role"]) == (FIRST, "previous")
    assert serving["requests"] == 0 and serving["drift_score"] is None
    assert serving["trusted"]["accuracy"] is None and serving["trusted"]["n"] == 0

    send(client, mnist_test.images[:1])
    serving = client.get("/api/v1/monitor?window=hour").json()["versions"][0]
    assert serving["requests"] == 1 and sum(serving["confidence_counts"]) == 1
    assert serving["enough_for_drift"] is False and serving["drifting"] is False
    # The linear model's card has no references: the test-set confidence is absent and
    # the training mix uniform, and the page still has a class-mix PSI to show.
    assert serving["reference_confidence"] is None and serving["psi_confidence"] is None
    assert serving["training_mix"] == [0.1] * 10 and serving["psi_class_mix"] is not None


def test_rotated_digits_raise_the_drift_score(
    client: TestClient, settings_api: Settings, mnist_test: Split
) -> None:
    send(client, mnist_test.images[:300])
    upright = client.get("/api/v1/monitor").json()["versions"][0]
    assert upright["requests"] == 300 and upright["enough_for_drift"]
    turned = rotate(mnist_test.images[300:900], np.full(600, 90.0))
    send(client, turned)
    shifted = client.get("/api/v1/monitor").json()["versions"][0]
    assert shifted["requests"] == 900
    assert shifted["drift_score"] > upright["drift_score"]
    metrics = client.get("/metrics").text
    line = next(
        x
        for x in metrics.splitlines()
        if x.startswith("digitlab_drift_psi{") and 'signal="score"' in x
    )
    assert f'version="{SECOND}"' in line and float(line.split()[-1]) == pytest.approx(
        shifted["drift_score"], rel=1e-6
    )


def test_trusted_accuracy_counts_labeller_labels_only(
    client: TestClient, settings_api: Settings, mnist_test: Split
) -> None:
    ids = send(client, mnist_test.images[:4])
    engine = db.make_engine(settings_api.database_url)
    with db.transaction(engine) as session:
        for k, prediction_id in enumerate(ids):
            label = int(mnist_test.labels[k])
            session.add(Feedback(prediction_id=prediction_id, label=label, source="labeller"))
        session.add(Feedback(prediction_id=ids[0], label=0, source="anonymous"))  # untrusted now
        assert len(session.scalars(select(Feedback.id)).all()) == 5
    engine.dispose()
    body = client.get("/api/v1/monitor?window=week").json()
    trusted = body["versions"][0]["trusted"]
    assert trusted["n"] == 3
    assert 0 <= trusted["low"] <= trusted["accuracy"] <= trusted["high"] <= 1
    assert sum(c["n"] for c in trusted["per_class"]) == 3
    assert body["waiting_for_review"] == 0  # all four inputs have a labeller's label


@pytest.mark.parametrize("window", ["month", "", "HOUR"])
def test_an_unknown_window_is_a_clear_422(client: TestClient, window: str) -> None:
    r = client.get(f"/api/v1/monitor?window={window}")
    assert r.status_code == 422 and "window" in r.json()["detail"]


def test_the_gauge_leaves_out_versions_with_few_predictions(
    client: TestClient, mnist_test: Split
) -> None:
    send(client, mnist_test.images[: monitor.MIN_FOR_DRIFT - 1])
    assert "digitlab_drift_psi{" not in client.get("/metrics").text
    assert "# TYPE digitlab_drift_psi gauge" in client.get("/metrics").text


def test_the_pages_render_with_no_rows_and_with_one(client: TestClient, mnist_test: Split) -> None:
    for path, words in [("/monitor", "no predictions"), ("/runs", "No training runs recorded")]:
        r = client.get(path)
        assert r.status_code == 200 and words in r.text, path
    send(client, mnist_test.images[:1])
    r = client.get("/monitor?window=week")
    assert r.status_code == 200 and "too few predictions to judge" in r.text
    assert r.text.count("<svg") == 4  # two charts for each of the two versions
    r = client.get("/runs?id=5")
    assert r.status_code == 200 and "Tick at least two runs" in r.text
    r = client.get("/runs?id=5&id=6")
    assert r.status_code == 200 and "no run with id 5, 6" in r.text


def test_openapi_declares_the_new_routes(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    assert {"401", "422"} <= set(paths["/api/v1/monitor"]["get"]["responses"])
    assert "401" in paths["/api/v1/runs"]["get"]["responses"]
