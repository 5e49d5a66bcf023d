"""Trusted labels through the real app on SQLite and PostgreSQL: who gave a correction,
the review queue's order and guard, a labeller's verdicts and undo, and the limit on
anonymous corrections. Every refusal is a 4xx JSON that leaves the store as it was."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from digitlab.app import create_app
from digitlab.config import Settings
from digitlab.data import Split
from digitlab.store import db
from digitlab.store.models import Feedback
from tests.api.conftest import VIEWER_TOKEN, b64, png, ready_settings

LABELLER_TOKEN = "l4beller-test-token-93e1"
LABELLER = {"Authorization": f"Bearer {LABELLER_TOKEN}"}


def make_client(settings: Settings, **changes: object) -> TestClient:
    return TestClient(
        create_app(settings.model_copy(update=changes)), raise_server_exceptions=False
    )


@pytest.fixture
def settings_review(tmp_path: Path, db_url: str, linear_models: Path) -> Settings:
    settings = ready_settings(tmp_path, db_url, linear_models)
    return settings.model_copy(update={"labeller_token": LABELLER_TOKEN})


@pytest.fixture
def client(settings_review: Settings) -> Iterator[TestClient]:
    with make_client(settings_review) as c:
        yield c


def predict(client: TestClient, images: Split, n: int) -> list[dict[str, object]]:
    body = {"images": [{"image": b64(png(image))} for image in images.images[:n]]}
    r = client.post("/api/v1/predict/batch", json=body)
    assert r.status_code == 200, r.text
    return list(r.json()["predictions"])


def feedback_rows(settings: Settings) -> list[tuple[int, int, str]]:
    engine = db.make_engine(settings.database_url)
    with db.transaction(engine) as s:
        rows = s.execute(select(Feedback.prediction_id, Feedback.label, Feedback.source))
        found = [(r.prediction_id, r.label, r.source) for r in rows]
    engine.dispose()
    return sorted(found)


def post_label(
    client: TestClient, prediction_id: object, label: object, headers: dict[str, str] | None = None
) -> httpx.Response:
    return client.post(
        f"/api/v1/predictions/{prediction_id}/feedback", json={"label": label}, headers=headers
    )


def test_a_correction_records_who_gave_it(
    client: TestClient, settings_review: Settings, mnist_test: Split
) -> None:
    a, b, c = predict(client, mnist_test, 3)
    assert post_label(client, a["prediction_id"], 1, LABELLER).status_code == 201
    assert post_label(client, b["prediction_id"], 2).status_code == 201
    # The viewer's token is the service's, not a labeller's: anonymous.
    viewer = {"Authorization": f"Bearer {VIEWER_TOKEN}"}
    with make_client(settings_review, viewer_token=VIEWER_TOKEN) as guarded:
        assert post_label(guarded, c["prediction_id"], 3, viewer).status_code == 201
    assert feedback_rows(settings_review) == [
        (a["prediction_id"], 1, "labeller"),
        (b["prediction_id"], 2, "anonymous"),
        (c["prediction_id"], 3, "anonymous"),
    ]
    metrics = client.get("/metrics").text
    assert 'digitlab_feedback_total{source="labeller"} 1.0' in metrics


@pytest.mark.parametrize(
    ("prediction_id", "label", "headers", "status", "says"),
    [
        (None, 3, {"Authorization": "Bearer not-a-token"}, 401, "not the labeller token"),
        (None, 10, LABELLER, 422, "label"),
        (None, True, LABELLER, 422, "label"),
        (999_999, 3, LABELLER, 404, "no prediction 999999"),
        (0, 3, LABELLER, 422, "prediction_id"),
        (2**63, 3, LABELLER, 422, "prediction_id"),
    ],
)
def test_bad_corrections_are_refused_and_change_nothing(
    client: TestClient,
    settings_review: Settings,
    mnist_test: Split,
    prediction_id: int | None,
    label: object,
    headers: dict[str, str],
    status: int,
    says: str,
) -> None:
    (made,) = predict(client, mnist_test, 1)
    target = made["prediction_id"] if prediction_id is None else prediction_id
    r = post_label(client, target, label, headers)
    assert r.status_code == status, r.text
    assert says in r.json()["detail"]
    assert feedback_rows(settings_review) == []


def test_an_input_a_labeller_labelled_takes_no_more_labels(
    client: TestClient, settings_review: Settings, mnist_test: Split
) -> None:
    (made,) = predict(client, mnist_test, 1)
    pid = made["prediction_id"]
    first = post_label(client, pid, 7, LABELLER)
    assert first.status_code == 201
    for headers in (LABELLER, None):
        r = post_label(client, pid, 1, headers)
        assert r.status_code == 409, r.text
        assert (
            f"already has a labeller's label (feedback {first.json()['id']})" in r.json()["detail"]
        )
    assert feedback_rows(settings_review) == [(pid, 7, "labeller")]


def test_the_queue_needs_the_labeller_token(client: TestClient, settings_review: Settings) -> None:
    assert client.get("/api/v1/review").status_code == 401
    wrong = client.get("/api/v1/review", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401 and "labeller token" in wrong.json()["detail"]
    assert wrong.headers["www-authenticate"] == "Bearer"
    with make_client(settings_review, labeller_token=None) as off:
        r = off.get("/api/v1/review", headers=LABELLER)
    assert r.status_code == 403 and "DIGITLAB_LABELLER_TOKEN" in r.json()["detail"]
    assert client.get("/api/v1/review?limit=0", headers=LABELLER).status_code == 422


def test_the_queue_puts_disagreements_then_the_least_sure_first(
    client: TestClient, mnist_test: Split
) -> None:
    made = predict(client, mnist_test, 12)
    queue = client.get("/api/v1/review?limit=50", headers=LABELLER).json()
    assert queue["remaining"] == 12 and len(queue["items"]) == 12
    margins = [item["margin"] for item in queue["items"]]
    assert margins == sorted(margins)
    # A short page skips the rows that cannot be on it, and is the long one's start.
    short = client.get("/api/v1/review?limit=4", headers=LABELLER).json()["items"]
    assert [i["input_id"] for i in short] == [i["input_id"] for i in queue["items"][:4]]
    first = queue["items"][0]
    top = first["top3"]
    assert len(top) == 3 and top[0]["label"] == first["predicted"]
    assert top[0]["probability"] - top[1]["probability"] == pytest.approx(first["margin"], abs=1e-5)
    # An anonymous correction that disagrees with the model goes to the front,
    # even for the input the model is surest of.
    surest = queue["items"][-1]
    wrong = (surest["predicted"] + 1) % 10
    assert post_label(client, surest["prediction_id"], wrong).status_code == 201
    # A labelled input leaves the queue.
    assert post_label(client, first["prediction_id"], 4, LABELLER).status_code == 201
    again = client.get("/api/v1/review?limit=3", headers=LABELLER).json()
    assert again["remaining"] == 11 and len(again["items"]) == 3
    assert again["items"][0]["input_id"] == surest["input_id"]
    assert again["items"][0]["anonymous_label"] == wrong
    assert first["input_id"] not in {i["input_id"] for i in again["items"]}
    assert {i["input_id"] for i in queue["items"]} == {m["input_data_id"] for m in made}


def test_a_labeller_confirms_rejects_and_undoes(
    client: TestClient, settings_review: Settings, mnist_test: Split
) -> None:
    a, b = predict(client, mnist_test, 2)
    anon_a = post_label(client, a["prediction_id"], 5).json()["id"]
    anon_b = post_label(client, b["prediction_id"], 6).json()["id"]
    # Refusals first: each leaves the two anonymous rows alone.
    for method, url, body, status in [
        ("POST", f"/api/v1/feedback/{anon_a}/confirm", None, 401),  # no token
        ("POST", "/api/v1/feedback/999999/confirm", None, 404),
        ("POST", "/api/v1/feedback/0/confirm", None, 422),
        ("POST", f"/api/v1/feedback/{anon_b}/reject", {"label": 6}, 409),  # the same label
        ("POST", f"/api/v1/feedback/{anon_b}/reject", {"label": 10}, 422),
        ("POST", f"/api/v1/feedback/{anon_b}/reject", {"label": True}, 422),
        ("POST", f"/api/v1/feedback/{anon_b}/reject", {}, 422),
        ("DELETE", f"/api/v1/feedback/{anon_a}", None, 409),  # anonymous: not undone
    ]:
        headers = None if status == 401 else LABELLER
        r = client.request(method, url, json=body, headers=headers)
        assert r.status_code == status, (url, body, r.text)
        assert r.json()["detail"]
    assert [s for _, _, s in feedback_rows(settings_review)] == ["anonymous", "anonymous"]

    confirmed = client.post(f"/api/v1/feedback/{anon_a}/confirm", headers=LABELLER)
    assert confirmed.status_code == 201 and confirmed.json()["label"] == 5
    rejected = client.post(f"/api/v1/feedback/{anon_b}/reject", json={"label": 8}, headers=LABELLER)
    assert rejected.status_code == 201 and rejected.json()["label"] == 8
    again = client.post(f"/api/v1/feedback/{anon_a}/confirm", headers=LABELLER)
    assert again.status_code == 409
    assert client.get("/api/v1/review", headers=LABELLER).json()["remaining"] == 0

    undone = client.delete(f"/api/v1/feedback/{rejected.json()['id']}", headers=LABELLER)
    assert undone.status_code == 200 and undone.json()["input_id"] == b["input_data_id"]
    queue = client.get("/api/v1/review", headers=LABELLER).json()
    assert [i["input_id"] for i in queue["items"]] == [b["input_data_id"]]
    assert feedback_rows(settings_review) == sorted(
        [
            (a["prediction_id"], 5, "anonymous"),
            (a["prediction_id"], 5, "labeller"),
            (b["prediction_id"], 6, "anonymous"),
        ]
    )


def test_anonymous_corrections_are_rate_limited_per_address(
    settings_review: Settings, mnist_test: Split
) -> None:
    with make_client(settings_review, anonymous_feedback_per_minute=5) as client:
        made = predict(client, mnist_test, 8)
        answers = [post_label(client, m["prediction_id"], 1) for m in made[:7]]
        assert [r.status_code for r in answers] == [201] * 5 + [429] * 2
        refused = answers[-1]
        assert int(refused.headers["retry-after"]) >= 1
        assert "too many anonymous corrections" in refused.json()["detail"]
        # Labellers are not limited.
        assert post_label(client, made[7]["prediction_id"], 1, LABELLER).status_code == 201
        metrics = client.get("/metrics").text
    assert "digitlab_feedback_rate_limited_total 2.0" in metrics
    assert len(feedback_rows(settings_review)) == 6
    with make_client(settings_review, anonymous_feedback_per_minute=0) as off:
        r = post_label(off, made[6]["prediction_id"], 1)
    assert r.status_code == 403 and "labeller token" in r.json()["detail"]


def test_a_labeller_may_view_and_a_viewer_cookie_is_no_labellers(
    settings_review: Settings, mnist_test: Split
) -> None:
    with make_client(settings_review, viewer_token=VIEWER_TOKEN) as guarded:
        (made,) = predict(guarded, mnist_test, 1)
        assert guarded.get("/api/v1/predictions").status_code == 401
        assert guarded.get("/api/v1/predictions", headers=LABELLER).status_code == 200
        # Signed in with the viewer token: a viewer's cookie, which labels nothing.
        signed = guarded.post("/login", data={"token": VIEWER_TOKEN}, follow_redirects=False)
        assert signed.status_code == 303 and "digitlab_labeller" not in signed.cookies
        assert guarded.get("/api/v1/review").status_code == 401
        guarded.cookies.clear()
        # Signed in with the labeller token: the queue, reads, and labeller corrections.
        signed = guarded.post("/login", data={"token": LABELLER_TOKEN}, follow_redirects=False)
        assert signed.status_code == 303 and "digitlab_labeller" in signed.cookies
        assert guarded.get("/api/v1/review").json()["remaining"] == 1
        assert guarded.get("/api/v1/predictions").status_code == 200
        assert post_label(guarded, made["prediction_id"], 2).status_code == 201
    assert feedback_rows(settings_review) == [(made["prediction_id"], 2, "labeller")]


def test_the_review_page_sends_strangers_to_login_and_says_when_labelling_is_off(
    client: TestClient, settings_review: Settings
) -> None:
    r = client.get("/review", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/login?next=%2Freview"
    assert client.get("/review", headers=LABELLER).status_code == 200
    with make_client(settings_review, labeller_token=None) as off:
        page = off.get("/review")
    assert page.status_code == 200 and "Labelling is off" in page.text
