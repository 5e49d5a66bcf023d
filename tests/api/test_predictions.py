"""Reading stored predictions back: pages, filters, one by id, the input image, feedback."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

import numpy as np
from fastapi.testclient import TestClient
from PIL import Image

from digitlab.data import Split
from tests.api.conftest import SECOND, b64, png


def predict_some(client: TestClient, mnist_test: Split, n: int) -> list[dict[str, object]]:
    items = [{"image": b64(png(mnist_test.images[k])), "true_label": int(mnist_test.labels[k])}
             for k in range(n)]  # fmt: skip
    r = client.post("/api/v1/predict/batch", json={"images": items})
    assert r.status_code == 200, r.text
    predictions: list[dict[str, object]] = r.json()["predictions"]
    return predictions


def test_pages_newest_first(client: TestClient, mnist_test: Split) -> None:
    made = predict_some(client, mnist_test, 7)
    ids = sorted((int(str(p["prediction_id"])) for p in made), reverse=True)
    first = client.get("/api/v1/predictions?limit=3").json()
    assert [p["id"] for p in first["items"]] == ids[:3] and first["next_offset"] == 3
    second = client.get("/api/v1/predictions?limit=3&offset=3").json()
    last = client.get("/api/v1/predictions?limit=3&offset=6").json()
    assert [p["id"] for p in second["items"]] == ids[3:6]
    assert [p["id"] for p in last["items"]] == ids[6:] and last["next_offset"] is None


def test_filters(client: TestClient, mnist_test: Split) -> None:
    made = predict_some(client, mnist_test, 30)
    wrong = [p for k, p in enumerate(made) if p["prediction"] != int(mnist_test.labels[k])]
    page = client.get("/api/v1/predictions?wrong=true&limit=100").json()
    assert sorted(p["id"] for p in page["items"]) == sorted(
        int(str(p["prediction_id"])) for p in wrong
    )
    sevens = client.get("/api/v1/predictions?label=7&limit=100").json()["items"]
    assert len(sevens) == sum(p["prediction"] == 7 for p in made) and sevens
    assert all(p["label"] == 7 for p in sevens)
    assert len(client.get(f"/api/v1/predictions?model={SECOND}&limit=100").json()["items"]) == 30
    assert client.get("/api/v1/predictions?model=other").json()["items"] == []
    now = datetime.now(UTC)
    later = (now + timedelta(hours=1)).isoformat()
    earlier = (now - timedelta(hours=1)).isoformat()
    window = client.get("/api/v1/predictions", params={"since": earlier, "until": later})
    assert len(window.json()["items"]) == 30
    assert client.get("/api/v1/predictions", params={"since": later}).json()["items"] == []
    assert client.get("/api/v1/predictions", params={"until": earlier}).json()["items"] == []


def test_one_prediction_its_image_and_feedback(client: TestClient, mnist_test: Split) -> None:
    made = predict_some(client, mnist_test, 1)[0]
    pid, iid = made["prediction_id"], made["input_data_id"]
    one = client.get(f"/api/v1/predictions/{pid}").json()
    assert one["input_id"] == iid and one["model_version"] == SECOND
    assert one["true_label"] == int(mnist_test.labels[0])
    assert np.allclose(one["probabilities"], made["probabilities"], atol=1e-6)
    r = client.get(one["image_url"])
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(r.content))), mnist_test.images[0])
    assert client.get("/api/v1/inputs/123456/image.png").status_code == 404

    r = client.post(f"/api/v1/predictions/{pid}/feedback", json={"label": 3, "note": "a 3"})
    assert r.status_code == 201 and r.json()["label"] == 3
    assert client.get(f"/api/v1/predictions/{pid}").json()["true_label"] == 3
    r = client.post("/api/v1/predictions/123456/feedback", json={"label": 3})
    assert r.status_code == 404 and "123456" in r.json()["detail"]
