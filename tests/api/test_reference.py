"""The reference project's routes (/health, /predict, /upload) answer as the reference
does, with its lenient inputs and its `{"error": ...}` shape, while /api/v1 stays strict
(issue 29, part B). Its client script runs unchanged against a real served process."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from digitlab.config import Settings
from digitlab.data import Split
from digitlab.store import db
from digitlab.store.models import Feedback, InputData
from digitlab.store.testing_pg import PostgresServer
from tests.api.conftest import b64, counts, png, ready_settings, served_on_postgres
from tests.utils.served import serving

CLIENT = Path(__file__).parent / "reference" / "client.py"


def stored_labels(settings: Settings) -> tuple[list[int | None], list[tuple[int, str]]]:
    """The inputs' (trusted) labels and the feedback rows (label, source)."""
    engine = db.make_engine(settings.database_url)
    try:
        with db.transaction(engine) as s:
            inputs = list(s.scalars(select(InputData.label).order_by(InputData.id)))
            feedback = [(f.label, f.source) for f in s.scalars(select(Feedback))]
    finally:
        engine.dispose()
    return inputs, feedback


def test_health_answers_like_the_reference(client: TestClient) -> None:
    r = client.get("/health")
    assert r.status_code == 200 and r.json() == {"status": "ok"}


def test_lenient_inputs_are_read(
    client: TestClient, settings_api: Settings, mnist_test: Split
) -> None:
    data = png(mnist_test.images[0])
    bodies = [
        {"image": base64.encodebytes(data).decode(), "true_label": -1},  # line breaks
        {"image": "data:image/png," + b64(data), "true_label": "7"},  # no ;base64
        {"image": "data:image/png;base64," + b64(data), "true_label": 3},
        {"image": b64(data)},
    ]
    answers = [client.post("/predict", json=body) for body in bodies]
    assert [r.status_code for r in answers] == [200] * 4, [r.text for r in answers]
    first = answers[0].json()
    # The answer keeps the fields it had (an `is_digit` may join them).
    assert {"prediction", "confidence", "probabilities", "input_data_id", "prediction_id",
            "model_version", "latency_ms", "image_url"} <= set(first)  # fmt: skip
    assert len({r.json()["prediction"] for r in answers}) == 1
    inputs, feedback = stored_labels(settings_api)
    # Nobody signed in: the labels are anonymous feedback, not the inputs' labels.
    assert inputs == [None] * 4
    assert sorted(feedback) == [(3, "anonymous"), (7, "anonymous")]
    # /api/v1 keeps its strict contract.
    strict = client.post("/api/v1/predict", json={"image": b64(data), "true_label": -1})
    assert strict.status_code == 422 and "detail" in strict.json()
    lines = client.post("/api/v1/predict", json={"image": base64.encodebytes(data).decode()})
    assert lines.status_code == 422


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (b"", "not valid JSON"),
        (b"not json", "not valid JSON"),
        (b"[1, 2]", "not a JSON object"),
        (b'{"true_label": 3}', "no image"),
        (b'{"image": "@@@"}', "base64"),
        (b'{"image": "aGVsbG8="}', "image"),  # "hello": not an image
        (json.dumps({"image": "AAAA", "true_label": 11}).encode(), "true_label"),
        (json.dumps({"image": "AAAA", "true_label": "seven"}).encode(), "true_label"),
        (json.dumps({"image": "AAAA", "true_label": True}).encode(), "true_label"),
        (b'{"image": "AAAA", "true_label": ' + b"9" * 5000 + b"}", "not valid JSON"),
    ],
)
def test_errors_are_400_with_the_reference_shape(
    client: TestClient, settings_api: Settings, body: bytes, words: str
) -> None:
    r = client.post("/predict", content=body, headers={"content-type": "application/json"})
    assert r.status_code == 400, r.text
    assert set(r.json()) == {"error"} and words in r.json()["error"], r.text
    assert counts(settings_api) == (0, 0)


def test_upload_form_answers_with_a_page(
    client: TestClient, settings_api: Settings, mnist_test: Split
) -> None:
    data = png(mnist_test.images[4])
    r = client.post("/upload", files={"image": ("four.png", data, "image/png")})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    answer = client.post("/predict", json={"image": b64(data)}).json()
    assert f'<output id="upload-prediction">{answer["prediction"]}</output>' in r.text
    # CSP-safe: no inline script or style.
    assert "<script" not in r.text and "style=" not in r.text and "<style" not in r.text
    bad = client.post("/upload", files={"image": ("x.txt", b"just text", "text/plain")})
    assert bad.status_code == 400 and 'id="upload-error"' in bad.text
    none = client.post("/upload", files={"other": ("x.png", data, "image/png")})
    assert none.status_code == 400 and "`image`" in none.text
    assert counts(settings_api) == (2, 2)


def test_a_labellers_label_on_the_reference_route_is_trusted(
    tmp_path: Path, db_url: str, linear_models: Path, mnist_test: Split
) -> None:
    from digitlab.app import create_app

    settings = ready_settings(tmp_path, db_url, linear_models).model_copy(
        update={"labeller_token": "l4beller-token"}
    )
    with TestClient(create_app(settings)) as c:
        r = c.post(
            "/predict",
            json={"image": b64(png(mnist_test.images[0])), "true_label": "7"},
            headers={"Authorization": "Bearer l4beller-token"},
        )
    assert r.status_code == 200, r.text
    assert stored_labels(settings) == ([7], [])


def run_client(url: str, image: Path, label: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(CLIENT), url, str(image), label],
        capture_output=True,
        text=True,
        timeout=60,
    )


def check_reference_client(url: str, tmp_path: Path, mnist_test: Split) -> None:
    image = tmp_path / "digit.png"
    image.write_bytes(png(mnist_test.images[0]))
    for label in ("-1", "7"):
        done = run_client(url, image, label)
        assert done.returncode == 0, done.stdout + done.stderr
        answer = json.loads(done.stdout)
        assert 0 <= answer["prediction"] <= 9 and answer["input_data_id"] > 0


def test_the_reference_client_runs_unchanged(
    tmp_path: Path, linear_models: Path, mnist_test: Split
) -> None:
    settings = ready_settings(tmp_path, f"sqlite:///{tmp_path / 'served.db'}", linear_models)
    with serving(settings, tmp_path) as served:
        check_reference_client(served.url, tmp_path, mnist_test)
    inputs, feedback = stored_labels(settings)
    assert inputs == [None, None] and feedback == [(7, "anonymous")]
    # Against nothing, it says what the reference's says.
    done = run_client(served.url, tmp_path / "digit.png", "7")
    assert done.returncode == 1 and "Server is not responding" in done.stdout


def test_the_reference_client_runs_unchanged_on_postgres(
    tmp_path: Path, pg_server: PostgresServer, linear_models: Path, mnist_test: Split
) -> None:
    with served_on_postgres(pg_server, linear_models, tmp_path) as served:
        check_reference_client(served.url, tmp_path, mnist_test)
        inputs, feedback = stored_labels(served.settings)
    assert inputs == [None, None] and feedback == [(7, "anonymous")]
