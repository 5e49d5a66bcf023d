"""DIGITLAB_VIEWER_TOKEN over HTTP: every route is declared open, admin or guarded, the
guarded reads answer only the viewer (or admin) token, and the open ones stay open."""

from __future__ import annotations

import logging
from urllib.parse import urlsplit

import pytest
from fastapi import FastAPI, routing
from fastapi.testclient import TestClient

from digitlab.app import create_app
from digitlab.config import Settings
from digitlab.data import Split
from tests.api.conftest import ADMIN_TOKEN, SECOND, VIEWER_TOKEN, b64, png

# Stored inputs, predictions and feedback: the viewer token, when set.
GUARDED_API = {
    ("GET", "/api/v1/predictions"),
    ("GET", "/api/v1/predictions/{prediction_id}"),
    ("GET", "/api/v1/inputs/{input_id}/image.png"),  # or the key from the prediction
    ("GET", "/api/v1/monitor"),
    ("GET", "/api/v1/runs"),
    ("GET", "/api/v1/readings"),
    ("GET", "/api/v1/readings/{reading_id}"),
}
GUARDED_PAGES = {("GET", "/history"), ("GET", "/monitor"), ("GET", "/runs")}  # to /login
ADMIN = {("POST", "/api/v1/models/{version}/activate")}
# The labeller token (tests/api/test_review.py); the page redirects to /login.
LABELLER = {
    ("GET", "/api/v1/review"),
    ("POST", "/api/v1/feedback/{feedback_id}/confirm"),
    ("POST", "/api/v1/feedback/{feedback_id}/reject"),
    ("DELETE", "/api/v1/feedback/{feedback_id}"),
    ("GET", "/review"),
}
OPEN_READS = {
    ("GET", "/"),
    ("GET", "/models"),  # model cards; live accuracy is an aggregate, no one's input
    ("GET", "/models/{version}/curves.png"),  # training history
    ("GET", "/models/{version}/confusion.png"),  # the public test set
    ("GET", "/api/v1/models"),
    ("GET", "/api/v1/models/current"),
    ("GET", "/healthz"),
    ("GET", "/health"),  # the reference project's liveness check
    ("GET", "/readyz"),
    ("GET", "/api/v1/upgrade"),  # which model trains in the background, how far
    ("GET", "/metrics"),  # counts by route and label: aggregates only
    ("GET", "/login"),
    ("GET", "/docs"),
    ("GET", "/redoc"),
    ("GET", "/openapi.json"),
}
OPEN_WRITES = {
    ("POST", "/predict"),
    ("POST", "/upload"),  # the reference project's form: a prediction, like /predict
    ("POST", "/api/v1/predict"),
    ("POST", "/api/v1/predict/batch"),
    ("POST", "/api/v1/read"),  # a number: a prediction per digit
    # anonymous corrections of a reading are kept as such (trusted from a labeller only)
    ("POST", "/api/v1/readings/{reading_id}/correct"),
    # The Recognise page sends it anonymously; it writes a label and reveals nothing.
    # Anonymous ones are rate-limited and train nothing unless asked (test_review.py).
    ("POST", "/api/v1/predictions/{prediction_id}/feedback"),
    ("POST", "/login"),
    ("POST", "/logout"),
}
OPEN_MOUNTS = {("MOUNT", "/static")}


def declared_routes(app: FastAPI) -> set[tuple[str, str]]:
    # Newer FastAPI keeps included routers as lazy entries in app.routes; this flattens them.
    flatten = getattr(routing, "iter_route_contexts", None)
    found = set()
    for route in flatten(app.routes) if flatten else app.routes:
        methods = getattr(route, "methods", None) or {"MOUNT"}
        found |= {(m, str(route.path)) for m in methods - {"HEAD"}}
    return found


def url(path: str, stored: dict[str, int]) -> str:
    return path.format(version=SECOND, **stored)


def test_every_route_is_declared_open_admin_or_guarded(viewer_settings: Settings) -> None:
    # A new route fails here until someone decides whether it reveals stored data.
    declared = GUARDED_API | GUARDED_PAGES | ADMIN | LABELLER | OPEN_READS | OPEN_WRITES
    declared |= OPEN_MOUNTS
    found = declared_routes(create_app(viewer_settings))
    assert found - declared == set(), "undeclared routes: add them to a list above"
    assert declared - found == set(), "declared routes that the app no longer has"


@pytest.mark.parametrize(("method", "path"), sorted(GUARDED_API))
def test_guarded_read_needs_the_viewer_token(
    viewer_client: TestClient,
    viewer_stored: dict[str, int],
    caplog: pytest.LogCaptureFixture,
    method: str,
    path: str,
) -> None:
    target = url(path, viewer_stored)
    r = viewer_client.request(method, target)
    assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
    assert "Authorization: Bearer" in r.json()["detail"]

    wrong = VIEWER_TOKEN[:-1] + "x"  # right but for its last character
    with caplog.at_level(logging.WARNING, logger="digitlab.auth"):
        r = viewer_client.request(method, target, headers={"Authorization": f"Bearer {wrong}"})
    assert r.status_code == 401 and "detail" in r.json()
    refusals = [rec.getMessage() for rec in caplog.records if rec.name == "digitlab.auth"]
    assert refusals and "testclient" in refusals[-1] and urlsplit(target).path in refusals[-1]
    # Neither the token sent nor the real one, nor any sizeable piece of them, is logged.
    for line in refusals:
        for secret in (wrong, VIEWER_TOKEN):
            assert not any(secret[k : k + 6] in line for k in range(len(secret) - 5)), line

    for token in (VIEWER_TOKEN, ADMIN_TOKEN):  # an admin may view
        r = viewer_client.request(method, target, headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 200, r.text


def test_history_page_redirects_to_the_sign_in(
    viewer_client: TestClient, viewer_stored: dict[str, int]
) -> None:
    r = viewer_client.get("/history?label=7&page=1", follow_redirects=False)
    assert r.status_code == 303
    assert r.headers["location"] == "/login?next=%2Fhistory%3Flabel%3D7%26page%3D1"
    r = viewer_client.get("/history", headers={"Authorization": f"Bearer {VIEWER_TOKEN}"})
    assert r.status_code == 200 and f"/api/v1/inputs/{viewer_stored['input_id']}/" in r.text


@pytest.mark.parametrize(("method", "path"), sorted(OPEN_READS))
def test_open_reads_stay_open_with_the_token_set(
    viewer_client: TestClient, viewer_stored: dict[str, int], method: str, path: str
) -> None:
    r = viewer_client.request(method, url(path, viewer_stored), follow_redirects=False)
    assert r.status_code == 200, r.text


def test_recognising_and_feedback_stay_open(viewer_client: TestClient, mnist_test: Split) -> None:
    one = {"image": b64(png(mnist_test.images[1]))}
    r = viewer_client.post("/api/v1/predict", json=one)
    assert r.status_code == 200, r.text
    made = r.json()
    assert viewer_client.post("/predict", json=one).status_code == 200
    r = viewer_client.post("/api/v1/predict/batch", json={"images": [one, one]})
    assert r.status_code == 200, r.text
    other = r.json()["predictions"][0]
    # The answer's image_url opens the image the model saw, and only that image.
    assert "?key=" in made["image_url"]
    r = viewer_client.get(made["image_url"])
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    key = made["image_url"].partition("?key=")[2]
    stolen = f"/api/v1/inputs/{other['input_data_id']}/image.png?key={key}"
    assert viewer_client.get(stolen).status_code == 401
    r = viewer_client.post(
        f"/api/v1/predictions/{made['prediction_id']}/feedback", json={"label": 4}
    )
    assert r.status_code == 201 and r.json()["label"] == 4
    assert viewer_client.get("/static/recognise.js").status_code == 200


def test_without_a_viewer_token_reads_are_open(client: TestClient, mnist_test: Split) -> None:
    r = client.post("/api/v1/predict", json={"image": b64(png(mnist_test.images[0]))})
    made = r.json()
    assert made["image_url"] == f"/api/v1/inputs/{made['input_data_id']}/image.png"
    for path in (
        "/api/v1/predictions",
        f"/api/v1/predictions/{made['prediction_id']}",
        made["image_url"],
        "/history",
    ):
        assert client.get(path, follow_redirects=False).status_code == 200, path
