"""The sign-in form: a right token sets a signed HttpOnly, SameSite=Strict cookie that opens
History and the stored images; a wrong one sets nothing; `next` never leaves the site."""

from __future__ import annotations

import logging
import time

import pytest
from fastapi.testclient import TestClient
from httpx import Response

from digitlab.api import auth
from digitlab.web.login import safe_next
from tests.api.conftest import ADMIN_TOKEN, VIEWER_TOKEN


def sign_in(client: TestClient, token: str, next_path: str = "/history") -> Response:
    return client.post("/login", data={"token": token, "next": next_path}, follow_redirects=False)


def test_the_form_sets_a_signed_cookie_that_opens_history(
    viewer_client: TestClient, viewer_stored: dict[str, int]
) -> None:
    r = viewer_client.get("/login?next=/history")
    assert r.status_code == 200 and 'name="token"' in r.text and 'value="/history"' in r.text
    r = sign_in(viewer_client, VIEWER_TOKEN, "/history?label=7")
    assert r.status_code == 303 and r.headers["location"] == "/history?label=7"
    cookie = r.headers["set-cookie"]
    assert cookie.startswith(f"{auth.VIEWER_COOKIE}=")
    assert "HttpOnly" in cookie and "samesite=strict" in cookie.lower() and "Path=/" in cookie
    value = viewer_client.cookies[auth.VIEWER_COOKIE]
    assert VIEWER_TOKEN not in value and auth.session_valid(VIEWER_TOKEN, value)

    r = viewer_client.get("/history", follow_redirects=False)
    assert r.status_code == 200 and "Sign out" in r.text
    assert f"/api/v1/inputs/{viewer_stored['input_id']}/image.png" in r.text
    # The thumbnails and the JSON reads take the same cookie.
    image = viewer_client.get(f"/api/v1/inputs/{viewer_stored['input_id']}/image.png")
    assert image.status_code == 200 and image.headers["content-type"] == "image/png"
    assert viewer_client.get("/api/v1/predictions").status_code == 200

    r = viewer_client.post("/logout", follow_redirects=False)
    assert r.status_code == 303 and auth.VIEWER_COOKIE not in viewer_client.cookies
    assert viewer_client.get("/history", follow_redirects=False).status_code == 303


def test_a_wrong_token_shows_an_error_and_sets_no_cookie(
    viewer_client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    wrong = "n0t-the-viewer-token"
    with caplog.at_level(logging.WARNING, logger="digitlab.auth"):
        r = sign_in(viewer_client, wrong)
    assert r.status_code == 401 and "not the viewer token" in r.text
    assert "set-cookie" not in r.headers and not viewer_client.cookies
    lines = [rec.getMessage() for rec in caplog.records if rec.name == "digitlab.auth"]
    assert lines and "testclient" in lines[-1] and "/login" in lines[-1]
    assert all(wrong not in line and VIEWER_TOKEN not in line for line in lines)
    assert viewer_client.get("/history", follow_redirects=False).status_code == 303


def test_the_admin_token_signs_in_too(viewer_client: TestClient) -> None:
    assert sign_in(viewer_client, ADMIN_TOKEN).status_code == 303
    assert viewer_client.get("/history", follow_redirects=False).status_code == 200


@pytest.mark.parametrize(
    "cookie",
    [
        auth.session_cookie(VIEWER_TOKEN, now=time.time() - 2 * auth.SESSION_SECONDS),  # expired
        auth.session_cookie("another-token"),  # signed under another token
        VIEWER_TOKEN,  # the raw token is not a session
        "9999999999.forged",
    ],
    ids=["expired", "other-token", "raw-token", "forged"],
)
def test_a_stale_or_forged_cookie_opens_nothing(viewer_client: TestClient, cookie: str) -> None:
    viewer_client.cookies.set(auth.VIEWER_COOKIE, cookie)
    assert viewer_client.get("/history", follow_redirects=False).status_code == 303
    assert viewer_client.get("/api/v1/predictions").status_code == 401


@pytest.mark.parametrize(
    "target",
    [
        "https://evil.example/history",
        "//evil.example/history",
        "/\\evil.example/history",
        "\\\\evil.example",
        "javascript:alert(1)",
        "http:/evil.example",
        "/history\r\nSet-Cookie: x=1",
        "",
    ],
)
def test_next_never_leaves_the_site(viewer_client: TestClient, target: str) -> None:
    assert safe_next(target) == "/history"
    r = sign_in(viewer_client, VIEWER_TOKEN, target)
    assert r.status_code == 303 and r.headers["location"] == "/history"
    page = viewer_client.get("/login", params={"next": target})
    assert 'name="next" value="/history"' in page.text


def test_next_keeps_a_local_path() -> None:
    assert safe_next("/history?label=7&page=2") == "/history?label=7&page=2"
    assert safe_next("/models") == "/models"


def test_without_a_viewer_token_the_form_sets_nothing(client: TestClient) -> None:
    r = sign_in(client, "anything")
    assert r.status_code == 303 and "set-cookie" not in r.headers
    assert "nothing to sign in to" in client.get("/login").text
