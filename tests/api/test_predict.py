"""POST /api/v1/predict (JSON and multipart), the reference path /predict, and batches:
answers in the reference's shape, every request stored before the answer."""

from __future__ import annotations

import numpy as np
from fastapi.testclient import TestClient

from digitlab.config import Settings
from digitlab.data import Split
from digitlab.inference.runtime import OnnxClassifier
from digitlab.registry.versions import resolve
from digitlab.store import crud, db, queries
from tests.api.conftest import SECOND, b64, counts, png

FIELDS = {"prediction", "confidence", "probabilities", "input_data_id", "prediction_id"}


def expected(settings: Settings, images: np.ndarray) -> np.ndarray:
    return OnnxClassifier(resolve(settings.model_dir), threads=1).probabilities(images)


def test_json_predict_answers_and_stores(
    client: TestClient, settings_api: Settings, mnist_test: Split
) -> None:
    image, label = mnist_test.images[0], int(mnist_test.labels[0])
    r = client.post("/api/v1/predict", json={"image": b64(png(image)), "true_label": label})
    assert r.status_code == 200, r.text
    body = r.json()
    assert FIELDS | {"model_version", "latency_ms", "image_url", "is_digit"} == set(body)
    assert body["image_url"] == f"/api/v1/inputs/{body['input_data_id']}/image.png"
    probs = expected(settings_api, image[None])[0]
    assert body["prediction"] == int(probs.argmax())
    assert np.allclose(body["probabilities"], probs, atol=1e-6)
    assert body["confidence"] == max(body["probabilities"])
    assert body["model_version"] == SECOND and body["latency_ms"] > 0
    engine = db.make_engine(settings_api.database_url)
    with db.transaction(engine) as s:
        stored = crud.read_image(s, input_id=body["input_data_id"])
        record = queries.get_prediction(s, prediction_id=body["prediction_id"])
    assert np.array_equal(stored, image)  # a 28x28 MNIST PNG passes through unchanged
    assert record is not None and record.input_id == body["input_data_id"]
    assert record.true_label == label and record.label == body["prediction"]


def test_data_url_multipart_and_reference_path(
    client: TestClient, settings_api: Settings, mnist_test: Split
) -> None:
    data = png(mnist_test.images[1])
    answers = [
        client.post("/api/v1/predict", json={"image": "data:image/png;base64," + b64(data)}),
        client.post("/api/v1/predict", files={"file": ("digit.png", data, "image/png")}),
        client.post("/predict", files={"file": ("digit.png", data, "image/png")}),
        client.post("/predict", json={"image": b64(data)}),
    ]
    assert [r.status_code for r in answers] == [200] * 4, [r.text for r in answers]
    assert len({r.json()["prediction"] for r in answers}) == 1
    assert len({r.json()["prediction_id"] for r in answers}) == 4
    assert counts(settings_api) == (4, 4)


def test_multipart_true_label_and_original_kept(
    client: TestClient, settings_api: Settings, mnist_test: Split
) -> None:
    data = png(255 - mnist_test.images[2])  # dark ink on white, as people draw
    r = client.post(
        "/api/v1/predict",
        files={"file": ("mine.png", data, "image/png")},
        data={"true_label": str(int(mnist_test.labels[2]))},
    )
    assert r.status_code == 200, r.text
    engine = db.make_engine(settings_api.database_url)
    with db.transaction(engine) as s:
        record = queries.get_prediction(s, prediction_id=r.json()["prediction_id"])
        image = crud.read_image(s, input_id=r.json()["input_data_id"])
    assert record is not None and record.true_label == int(mnist_test.labels[2])
    assert record.source == "upload:mine.png"
    assert np.array_equal(image, mnist_test.images[2])  # inverted back


def test_batch_in_one_request(
    client: TestClient, settings_api: Settings, mnist_test: Split
) -> None:
    images = mnist_test.images[:20]
    items = [{"image": b64(png(im)), "true_label": int(y)} for im, y in
             zip(images, mnist_test.labels[:20], strict=True)]  # fmt: skip
    r = client.post("/api/v1/predict/batch", json={"images": items})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["model_version"] == SECOND and len(body["predictions"]) == 20
    probs = expected(settings_api, images)
    assert [p["prediction"] for p in body["predictions"]] == probs.argmax(axis=1).tolist()
    ids = [p["input_data_id"] for p in body["predictions"]]
    assert len(set(ids)) == 20 and counts(settings_api) == (20, 20)
    engine = db.make_engine(settings_api.database_url)
    with db.transaction(engine) as s:
        for k in (0, 19):  # ids line up with the images sent, in order
            assert np.array_equal(crud.read_image(s, input_id=ids[k]), images[k])


def test_batch_multipart(client: TestClient, settings_api: Settings, mnist_test: Split) -> None:
    files = [("file", (f"{k}.png", png(mnist_test.images[k]), "image/png")) for k in range(3)]
    r = client.post("/api/v1/predict/batch", files=files)
    assert r.status_code == 200, r.text
    assert len(r.json()["predictions"]) == 3 and counts(settings_api) == (3, 3)


def test_metrics_count_requests_predictions_and_model(
    client: TestClient, mnist_test: Split
) -> None:
    for k in range(3):
        assert client.post("/api/v1/predict", json={"image": b64(png(mnist_test.images[k]))})
    client.post("/api/v1/predict", json={"image": "!!"})
    text = client.get("/metrics").text
    ok = 'digitlab_http_requests_total{method="POST",route="/api/v1/predict",status="200"} 3.0'
    bad = 'digitlab_http_requests_total{method="POST",route="/api/v1/predict",status="422"} 1.0'
    assert ok in text and bad in text
    assert 'digitlab_http_request_duration_seconds_count{route="/api/v1/predict"} 4.0' in text
    by_label = [line for line in text.splitlines() if line.startswith("digitlab_predictions_total")]
    assert sum(float(line.split()[-1]) for line in by_label) == 3
    assert f'digitlab_model_info{{version="{SECOND}"}} 1.0' in text


def test_openapi_documents_the_routes(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    for path in ("/api/v1/predict", "/api/v1/predict/batch", "/api/v1/predictions",
                 "/api/v1/models/{version}/activate", "/readyz"):  # fmt: skip
        assert path in spec["paths"]
    body = spec["paths"]["/api/v1/predict"]["post"]["requestBody"]["content"]
    assert {"application/json", "multipart/form-data"} <= set(body)
    assert client.get("/docs").status_code == 200
