"""Text a careless client sends, answered with a message it can act on: a sign-in form
with a field over Starlette's 1 MB per field, a note holding a lone UTF-16 surrogate (not
a character, and not storable), and JSON FastAPI cannot parse. On both stores."""

from __future__ import annotations

import numpy as np
from fastapi.testclient import TestClient

from tests.api.conftest import b64, counts, png


def test_a_large_sign_in_form_is_answered_as_a_form(client: TestClient) -> None:
    answer = client.post("/login", data={"token": "x" * 1_200_000, "next": "/review"})
    assert answer.status_code == 422, answer.text
    detail = answer.json()["detail"]
    assert detail.startswith("body: the form cannot be read: "), detail
    assert "maximum size" in detail and "JSON" not in detail


def test_a_lone_surrogate_in_a_note_gets_a_clear_message(client: TestClient) -> None:
    image = b64(png(np.full((28, 28), 200, dtype=np.uint8)))
    prediction = client.post("/api/v1/predict", json={"image": image}).json()["prediction_id"]
    before = counts(client.app.state.service.settings)  # type: ignore[attr-defined]
    answer = client.post(
        f"/api/v1/predictions/{prediction}/feedback",
        content=b'{"label": 3, "note": "seven\\ud800"}',
        headers={"content-type": "application/json"},
    )
    assert answer.status_code == 422, answer.text
    detail = answer.json()["detail"]
    assert detail.startswith("note: "), detail
    assert "lone UTF-16 surrogate" in detail
    assert "codec" not in detail and "surrogates not allowed" not in detail
    assert counts(client.app.state.service.settings) == before  # type: ignore[attr-defined]


def test_json_fastapi_cannot_parse_still_says_so(client: TestClient) -> None:
    answer = client.post(
        "/api/v1/predictions/1/feedback",
        content=b'{"label": ' + b"9" * 5000 + b"}",
        headers={"content-type": "application/json"},
    )
    assert answer.status_code == 422, answer.text
    assert "cannot be read as JSON" in answer.json()["detail"]
