"""What the fuzzer found (issue 23), each on both stores: a client's mistake is a 4xx with
the same answer on SQLite and PostgreSQL, never a 5xx, and no answer names the database."""

from __future__ import annotations

import logging

import pytest
from fastapi.testclient import TestClient

from digitlab.app import create_app
from digitlab.config import Settings
from digitlab.data import Split
from tests.api.conftest import b64, png

HUGE = "99999999999999999999"  # beyond 64 bits


@pytest.fixture
def stored(client: TestClient, mnist_test: Split) -> int:
    r = client.post("/api/v1/predict", json={"image": b64(png(mnist_test.images[0]))})
    assert r.status_code == 200, r.text
    return int(r.json()["prediction_id"])


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", f"/api/v1/predictions/{HUGE}", None),
        ("GET", f"/api/v1/inputs/{HUGE}/image.png", None),
        ("POST", f"/api/v1/predictions/{HUGE}/feedback", {"label": 1}),
        ("GET", "/api/v1/predictions?offset=22377326822328360960", None),
        ("GET", "/api/v1/predictions/0", None),
        ("GET", "/api/v1/predictions?offset=-1", None),
    ],
)
def test_ids_and_offsets_beyond_64_bits_are_a_422(
    client: TestClient, method: str, path: str, body: dict[str, int] | None
) -> None:
    r = client.request(method, path, json=body)
    assert r.status_code == 422, r.text
    assert set(r.json()) == {"detail"}, r.text
    assert r.json()["detail"].startswith(("path.", "query.")), r.text


def test_the_largest_id_is_a_404(client: TestClient) -> None:
    r = client.get(f"/api/v1/predictions/{2**63 - 1}")
    assert r.status_code == 404, r.text


def test_a_note_with_nul_is_refused_on_both_stores(client: TestClient, stored: int) -> None:
    for note in ("a\x00b", "bell \x07", "esc \x1b[0m"):
        r = client.post(f"/api/v1/predictions/{stored}/feedback", json={"label": 3, "note": note})
        assert r.status_code == 422 and "control characters" in r.json()["detail"], r.text
    ok = {"label": 3, "note": "two lines\nand a tab\t, fine"}
    assert client.post(f"/api/v1/predictions/{stored}/feedback", json=ok).status_code == 201


@pytest.mark.parametrize("label", [True, False, "1", None, 1.5])
def test_a_label_must_be_a_json_integer(client: TestClient, stored: int, label: object) -> None:
    r = client.post(f"/api/v1/predictions/{stored}/feedback", json={"label": label})
    assert r.status_code == 422 and "label" in r.json()["detail"], r.text


def test_true_label_true_is_refused_on_predict(client: TestClient, mnist_test: Split) -> None:
    image = b64(png(mnist_test.images[0]))
    r = client.post("/api/v1/predict", json={"image": image, "true_label": True})
    assert r.status_code == 422 and "true_label" in r.json()["detail"], r.text
    r = client.post(
        "/api/v1/predict/batch", json={"images": [{"image": image, "true_label": True}]}
    )
    assert r.status_code == 422 and "true_label" in r.json()["detail"], r.text


def test_strict_query_values(client: TestClient) -> None:
    # Pydantic alone reads these as wrong=True, label=1 and a Unix time.
    for query in ("wrong=yes", "wrong=1", "label=1.5", "label=+1", "since=1764547200",
                  "since=2026-01-01", "model=a%00b"):  # fmt: skip
        r = client.get(f"/api/v1/predictions?{query}")
        assert r.status_code == 422, (query, r.text)
    for query in ("wrong=true", "label=1", "since=2026-01-01T00:00:00Z",
                  "since=0001-01-01T00:00:00%2B01:00"):  # fmt: skip
        assert client.get(f"/api/v1/predictions?{query}").status_code == 200, query


def test_every_422_has_the_documented_shape(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    assert "HTTPValidationError" not in schema["components"]["schemas"]
    operation = schema["paths"]["/api/v1/predictions/{prediction_id}"]["get"]
    assert operation["responses"]["422"] == {"$ref": "#/components/responses/BadInput"}
    r = client.get("/api/v1/predictions/abc")
    assert r.status_code == 422 and isinstance(r.json()["detail"], str)


def test_the_viewer_scheme_is_optional_while_no_viewer_token_is_set(client: TestClient) -> None:
    # `client` has no viewer token: the reads are open, and the schema says so.
    schema = client.get("/openapi.json").json()
    assert schema["paths"]["/api/v1/predictions"]["get"]["security"] == [{"viewer": []}, {}]
    assert client.get("/api/v1/predictions").status_code == 200
    activate = schema["paths"]["/api/v1/models/{version}/activate"]["post"]
    assert activate["security"] == [{"admin": []}]


def test_an_outage_is_a_503_without_the_database_url(
    settings_api: Settings, mnist_test: Split, caplog: pytest.LogCaptureFixture
) -> None:
    # A database that is not there: the answer says so and when to retry, the log says where.
    gone = settings_api.model_copy(
        update={"database_url": "postgresql+psycopg://digitlab:s3cr3t@127.0.0.1:1/nowhere"}
    )
    with (
        caplog.at_level(logging.WARNING, logger="digitlab"),
        TestClient(create_app(gone), raise_server_exceptions=False) as client,
    ):
        r = client.post("/api/v1/predict", json={"image": b64(png(mnist_test.images[0]))})
        ready = client.get("/readyz")
    assert r.status_code == 503 and r.headers["retry-after"].isdigit(), r.text
    for answer in (r.text, ready.text):
        for leak in ("postgresql", "127.0.0.1", "nowhere", "digitlab:", "s3cr3t"):
            assert leak not in answer, answer
    assert "127.0.0.1" in caplog.text and "s3cr3t" not in caplog.text


def test_a_body_that_is_not_utf8_is_a_422(client: TestClient, stored: int) -> None:
    r = client.post(
        f"/api/v1/predictions/{stored}/feedback",
        content=b"\x1f\xff",
        headers={"content-type": "application/json"},
    )
    assert r.status_code == 422, r.text


def test_an_unknown_body_type_is_a_415(client: TestClient) -> None:
    r = client.post("/api/v1/predict", content=b"x", headers={"content-type": "text/plain"})
    assert r.status_code == 415 and "text/plain" in r.json()["detail"], r.text
