"""POST /api/v1/read on both stores: real PNG files of numbers made from MNIST test
digits, what is stored and linked, the correction as a whole string, and the export of
the corrected digits."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import func, select

from digitlab.config import Settings
from digitlab.data import Split
from digitlab.evaluation.numberpics import LAYOUTS, compose, png_bytes
from digitlab.feedback.export import export
from digitlab.store import db
from digitlab.store.models import Feedback, InputData, Prediction, Reading, ReadingDigit
from tests.api.conftest import b64, ready_settings
from tests.api.hostile_files import wavy_line
from tests.api.test_review import LABELLER, LABELLER_TOKEN, make_client


@pytest.fixture
def settings_read(tmp_path: Path, db_url: str, linear_models: Path) -> Settings:
    settings = ready_settings(tmp_path, db_url, linear_models)
    return settings.model_copy(update={"labeller_token": LABELLER_TOKEN})


def number_file(tmp_path: Path, mnist_test: Split, picks: list[int], name: str) -> Path:
    picture = compose([mnist_test.images[k] for k in picks], LAYOUTS[0], np.random.default_rng(0))
    path = tmp_path / name
    path.write_bytes(png_bytes(picture))
    return path


def rows(settings: Settings, table: type) -> int:
    engine = db.make_engine(settings.database_url)
    with db.transaction(engine) as session:
        count = session.scalar(select(func.count()).select_from(table))
    engine.dispose()
    return int(count or 0)


def test_a_number_is_read_stored_corrected_and_exported(
    settings_read: Settings, mnist_test: Split, tmp_path: Path
) -> None:
    path = number_file(tmp_path, mnist_test, [0, 1, 2, 3], "four.png")
    with make_client(settings_read) as client, path.open("rb") as f:
        answer = client.post("/api/v1/read", files={"file": ("four.png", f, "image/png")})
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert len(body["digits"]) == 4  # four well-spaced digits, four boxes
        xs = [d["box"][0] for d in body["digits"]]
        assert xs == sorted(xs)
        assert body["text"] == "".join(str(d["prediction"]) for d in body["digits"])
        reading_id = body["reading_id"]

        listed = client.get("/api/v1/readings").json()
        assert [r["id"] for r in listed] == [reading_id]
        truth = "".join(str(int(mnist_test.labels[k])) for k in range(4))
        corrected = client.post(
            f"/api/v1/readings/{reading_id}/correct", json={"text": truth}, headers=LABELLER
        )
        assert corrected.status_code == 201, corrected.text
        assert len(corrected.json()["feedback_ids"]) == 4
        monitor = client.get("/api/v1/monitor").json()
        assert (monitor["readings"], monitor["corrected_readings"]) == (1, 1)

    engine = db.make_engine(settings_read.database_url)
    with db.transaction(engine) as session:
        reading = session.get(Reading, reading_id)
        assert reading is not None
        assert (reading.corrected_text, reading.corrected_by) == (truth, "labeller")
        assert reading.original == path.read_bytes()
        links = session.execute(
            select(ReadingDigit.position, Prediction.model_id, InputData.source, Feedback.label)
            .join(Prediction, Prediction.id == ReadingDigit.prediction_id)
            .join(InputData, InputData.id == Prediction.input_id)
            .join(Feedback, Feedback.prediction_id == Prediction.id)
            .where(ReadingDigit.reading_id == reading_id)
            .order_by(ReadingDigit.position)
        ).all()
        assert [r.label for r in links] == [int(c) for c in truth]
        assert {r.model_id for r in links} == {reading.model_id}
        assert {r.source for r in links} == {f"reading:{reading_id}"}
    result = export(engine, tmp_path / "export")
    engine.dispose()
    assert result.counts["items"] == 4  # each corrected digit is training data


def test_an_anonymous_correction_is_not_trained_on(
    settings_read: Settings, mnist_test: Split
) -> None:
    data = png_bytes(
        compose([mnist_test.images[k] for k in (5, 6)], LAYOUTS[0], np.random.default_rng(1))
    )
    with make_client(settings_read) as client:
        reading_id = client.post("/api/v1/read", json={"image": b64(data)}).json()["reading_id"]
        answer = client.post(f"/api/v1/readings/{reading_id}/correct", json={"text": "12"})
        assert answer.status_code == 201, answer.text
    engine = db.make_engine(settings_read.database_url)
    with db.transaction(engine) as session:
        sources = session.scalars(select(Feedback.source)).all()
    assert sources and set(sources) == {"anonymous"}
    engine.dispose()


@pytest.mark.parametrize(
    ("body", "status", "says"),
    [
        ({"image": "not base64!"}, 422, "base64"),
        ({"image": b64(b"GIF89a broken")}, 422, "image"),
        ({}, 422, "image"),
        ({"image": b64(wavy_line())}, 422, "too many strokes"),
    ],
)
def test_bad_input_is_a_4xx_and_writes_nothing(
    settings_read: Settings, body: dict[str, str], status: int, says: str
) -> None:
    with make_client(settings_read) as client:
        answer = client.post("/api/v1/read", json=body)
    assert answer.status_code == status
    assert says in answer.json()["detail"]
    assert rows(settings_read, Reading) == rows(settings_read, InputData) == 0


def test_more_than_twelve_digits_is_a_422_and_writes_nothing(
    settings_read: Settings, mnist_test: Split, tmp_path: Path
) -> None:
    path = number_file(tmp_path, mnist_test, list(range(13)), "thirteen.png")
    with make_client(settings_read) as client, path.open("rb") as f:
        answer = client.post("/api/v1/read", files={"file": ("13.png", f, "image/png")})
    assert answer.status_code == 422, answer.text
    assert "13 digits found; at most 12" in answer.json()["detail"]
    assert rows(settings_read, Reading) == rows(settings_read, InputData) == 0


def test_a_blank_page_reads_as_no_number_and_is_stored(settings_read: Settings) -> None:
    """Blank paper is a question with an answer ("no number here"), as a single digit's
    is "not a digit": 200, empty text, no digits, and the reading stored all the same."""
    with make_client(settings_read) as client:
        answer = client.post(
            "/api/v1/read", json={"image": b64(png_bytes(np.zeros((40, 120), np.uint8)))}
        )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["text"], body["digits"], body["confidence"]) == ("", [], 0.0)
    assert rows(settings_read, Reading) == 1 and rows(settings_read, InputData) == 0


@pytest.mark.parametrize("route", ["/api/v1/read", "/api/v1/predict"])
def test_form_fields_the_schema_allows_are_ignored(settings_read: Settings, route: str) -> None:
    """The multipart schema names `file` and allows other parts: a form with a few dozen
    of them is still answered (the fuzzer found 12 refused as 'too many fields')."""
    picture = png_bytes(np.zeros((28, 28), np.uint8))
    extra = {f"field{k}": "1" for k in range(40)}
    with make_client(settings_read) as client:
        answer = client.post(route, files={"file": ("p.png", picture, "image/png")}, data=extra)
    assert answer.status_code == 200, answer.text


def test_correcting_a_missing_reading_is_a_404(settings_read: Settings) -> None:
    with make_client(settings_read) as client:
        answer = client.post("/api/v1/readings/99/correct", json={"text": "1"}, headers=LABELLER)
        assert answer.status_code == 404
        bad = client.post("/api/v1/readings/99/correct", json={"text": "12a"}, headers=LABELLER)
        assert bad.status_code == 422
