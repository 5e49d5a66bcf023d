"""Issue 29, A7: a `true_label` sent with a prediction is the input's (trusted) label only
from a labeller or an admin; anyone else's is kept as anonymous feedback, so the input
still waits for review, is not exported for training, and moves no public live accuracy
on /models. On SQLite and PostgreSQL, through the real app."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from digitlab.app import create_app
from digitlab.config import Settings
from digitlab.data import Split
from digitlab.feedback.export import export
from digitlab.store import db, review
from digitlab.store.models import Feedback, InputData
from tests.api.conftest import ADMIN_TOKEN, b64, png, ready_settings

LABELLER_TOKEN = "l4beller-trust-token-5c2d"


@pytest.fixture
def trusting(tmp_path: Path, db_url: str, linear_models: Path) -> Iterator[TestClient]:
    settings = ready_settings(tmp_path, db_url, linear_models)
    settings = settings.model_copy(update={"labeller_token": LABELLER_TOKEN})
    with TestClient(create_app(settings), raise_server_exceptions=False) as c:
        yield c


def settings_of(client: TestClient) -> Settings:
    settings: Settings = client.app.state.service.settings  # type: ignore[attr-defined]
    return settings


def live_accuracy_text(client: TestClient) -> str:
    page = client.get("/models").text
    found = re.findall(
        r"(\d+\.\d+% over \d+ labelled inputs?|no labelled inputs or feedback yet)", page
    )
    return found[0]


def test_anonymous_labels_are_not_trusted(
    trusting: TestClient, mnist_test: Split, tmp_path: Path
) -> None:
    image = {"image": b64(png(mnist_test.images[0]))}
    wrong = (int(mnist_test.labels[0]) + 1) % 10
    anonymous = trusting.post("/api/v1/predict", json=image | {"true_label": wrong})
    batch = trusting.post("/api/v1/predict/batch", json={"images": [image | {"true_label": wrong}]})
    form = trusting.post(
        "/api/v1/predict",
        files={"file": ("d.png", png(mnist_test.images[0]), "image/png")},
        data={"true_label": str(wrong)},
    )
    assert [r.status_code for r in (anonymous, batch, form)] == [200] * 3
    before = live_accuracy_text(trusting)
    assert before == "no labelled inputs or feedback yet"
    # Anonymous feedback through its own route does not move it either.
    prediction_id = anonymous.json()["prediction_id"]
    r = trusting.post(f"/api/v1/predictions/{prediction_id}/feedback", json={"label": wrong})
    assert r.status_code == 201, r.text
    assert live_accuracy_text(trusting) == before

    settings = settings_of(trusting)
    engine = db.make_engine(settings.database_url)
    try:
        with db.transaction(engine) as s:
            assert list(s.scalars(select(InputData.label))) == [None] * 3
            sources = sorted(s.scalars(select(Feedback.source)))
            assert sources == ["anonymous"] * 4  # three given with predictions, one after
            assert review.count_waiting(s) == 3
        result = export(engine, tmp_path / "export", with_labelled=True)
        assert result.counts["items"] == 0 and result.anonymous["left_out"] == 3
    finally:
        engine.dispose()


def test_labellers_and_admins_labels_are_trusted(trusting: TestClient, mnist_test: Split) -> None:
    image = {"image": b64(png(mnist_test.images[0]))}
    label = int(mnist_test.labels[0])
    for token in (LABELLER_TOKEN, ADMIN_TOKEN):
        r = trusting.post(
            "/api/v1/predict",
            json=image | {"true_label": label},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert r.status_code == 200, r.text
    assert re.fullmatch(r"\d+\.\d+% over 2 labelled inputs", live_accuracy_text(trusting))
    engine = db.make_engine(settings_of(trusting).database_url)
    try:
        with db.transaction(engine) as s:
            assert list(s.scalars(select(InputData.label))) == [label, label]
            assert list(s.scalars(select(Feedback))) == []
            assert review.count_waiting(s) == 0
    finally:
        engine.dispose()
