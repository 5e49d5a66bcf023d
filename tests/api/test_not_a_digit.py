"""The not-a-digit verdict through the HTTP API, on SQLite and a real PostgreSQL, with
image files written to disk and uploaded as a client sends them: every answer (and each
image of a batch) carries `is_digit`, it is the model's verdict at the threshold its card
records, the stored prediction keeps it, and the OpenAPI schema declares it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from fastapi.testclient import TestClient
from PIL import Image, ImageDraw

from digitlab.app import create_app
from digitlab.config import Settings
from digitlab.data import Split
from digitlab.inference.preprocess import image_to_digit
from digitlab.inference.runtime import OnnxClassifier
from digitlab.registry.versions import CARD_FILE, resolve
from digitlab.store import db, queries

# The tiny linear test model is sure of nearly everything, blank paper included; a
# demanding threshold in its card makes it refuse the pictures it is least sure of, so
# that both verdicts come back.
THRESHOLD = 0.999


def set_threshold(settings: Settings, threshold: float) -> None:
    card_path = resolve(settings.model_dir).path / CARD_FILE
    card = json.loads(card_path.read_text())
    card["verdict"] = {"threshold": threshold}
    card_path.write_text(json.dumps(card))


def image_files(folder: Path, mnist_test: Split) -> list[Path]:
    """Digits as people send them (dark ink on white), a scribble and blank paper."""
    folder.mkdir()
    paths = []
    for k in range(12):
        path = folder / f"digit-{k}.png"
        Image.fromarray(255 - mnist_test.images[k]).save(path)
        paths.append(path)
    scribble = Image.new("L", (200, 200), 255)
    pen = ImageDraw.Draw(scribble)
    points = [(10 + 18 * i, 20 if i % 2 else 180) for i in range(11)]
    pen.line(points, fill=0, width=8)
    pen.line([(10, 100), (190, 110)], fill=0, width=8)
    scribble.save(folder / "scribble.png")
    Image.new("L", (120, 90), 250).save(folder / "paper.jpg", quality=90)
    return [*paths, folder / "scribble.png", folder / "paper.jpg"]


def verdicts(settings: Settings, paths: list[Path]) -> list[bool]:
    """What the model says of each file, computed here without the service."""
    classifier = OnnxClassifier(resolve(settings.model_dir), threads=1)
    digits = np.stack([image_to_digit(p.read_bytes()) for p in paths])
    return (classifier.probabilities(digits).max(axis=1) >= THRESHOLD).tolist()


def test_every_answer_carries_the_verdict_and_the_store_keeps_it(
    settings_api: Settings, mnist_test: Split, tmp_path: Path
) -> None:
    set_threshold(settings_api, THRESHOLD)
    paths = image_files(tmp_path / "files", mnist_test)
    expected = verdicts(settings_api, paths)
    assert True in expected and False in expected
    with TestClient(create_app(settings_api), raise_server_exceptions=False) as client:
        answers = []
        for path in paths:
            with path.open("rb") as f:
                r = client.post("/api/v1/predict", files={"file": (path.name, f, "image/png")})
            assert r.status_code == 200, r.text
            answers.append(r.json())
        assert [a["is_digit"] for a in answers] == expected
        for a in answers:  # prediction and probabilities stay as they were
            assert len(a["probabilities"]) == 10
            assert a["prediction"] == int(np.argmax(a["probabilities"]))

        files = [("file", (p.name, p.read_bytes(), "image/png")) for p in paths]
        batch = client.post("/api/v1/predict/batch", files=files)
        assert batch.status_code == 200, batch.text
        assert [a["is_digit"] for a in batch.json()["predictions"]] == expected

        refused = answers[expected.index(False)]
        shown = client.get(f"/api/v1/predictions/{refused['prediction_id']}")
        assert shown.status_code == 200 and shown.json()["is_digit"] is False

    engine = db.make_engine(settings_api.database_url)
    with db.transaction(engine) as s:
        stored = [
            queries.get_prediction(s, prediction_id=a["prediction_id"])
            for a in answers + batch.json()["predictions"]
        ]
    engine.dispose()
    assert [r.is_digit if r else None for r in stored] == expected + expected


def test_the_openapi_schema_declares_the_verdict(client: TestClient) -> None:
    schemas = client.get("/openapi.json").json()["components"]["schemas"]
    answer = schemas["PredictOut"]
    assert "is_digit" in answer["required"]
    assert answer["properties"]["is_digit"]["type"] == "boolean"
    stored = schemas["PredictionOut"]["properties"]["is_digit"]
    assert {"type": "null"} in stored["anyOf"] and {"type": "boolean"} in stored["anyOf"]
