"""Credentials from a careless or hostile client, against a real `digitlab serve` process
on SQLite and PostgreSQL:

- a malformed sign-in cookie (5,000 digits, a Unicode digit before the dot) is a signed-out
  visitor, never a 500, on every page and /login;
- `Authorization: bearer …` is the Bearer scheme (any case); a bare token is refused,
  never taken as a credential nor ignored into an anonymous correction;
- after a few wrong tokens (bearer or /login) a client gets 429 with Retry-After, for
  the right token too, until its bucket refills;
- a cookie-authenticated change from another origin is refused (403) and writes nothing.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from digitlab.data import Split
from digitlab.store import db
from digitlab.store.models import Feedback
from digitlab.store.testing_pg import PostgresServer
from tests.api.conftest import VIEWER_TOKEN, b64, png, ready_settings
from tests.utils.served import Served, serving

pytestmark = pytest.mark.timeout(180)
LABELLER_TOKEN = "hardening-labeller-token-81c4"
TOKENS = {"DIGITLAB_VIEWER_TOKEN": VIEWER_TOKEN, "DIGITLAB_LABELLER_TOKEN": LABELLER_TOKEN}
WRONG_PER_MINUTE = 5


def start(
    request: pytest.FixtureRequest, root: Path, linear_models: Path, **env: str
) -> Iterator[Served]:
    if request.param == "sqlite":
        url = f"sqlite:///{root / 'auth.db'}"
    else:
        server: PostgresServer = request.getfixturevalue("pg_server")
        url = server.create_database(f"auth_{uuid.uuid4().hex[:10]}")
    with serving(ready_settings(root, url, linear_models), root, **TOKENS, **env) as served:
        yield served


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def service(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, linear_models: Path
) -> Iterator[Served]:
    """One service per store for the tests that send few wrong tokens (under the default
    limit of 10)."""
    yield from start(request, tmp_path_factory.mktemp("auth"), linear_models)


@pytest.fixture(params=["sqlite", "postgresql"])
def fresh(request: pytest.FixtureRequest, tmp_path: Path, linear_models: Path) -> Iterator[Served]:
    """A service of its own, whose wrong-token limit no other test has spent."""
    limit = {"DIGITLAB_WRONG_TOKENS_PER_MINUTE": str(WRONG_PER_MINUTE)}
    yield from start(request, tmp_path, linear_models, **limit)


def a_correction(url: str, images: Split) -> int:
    """An anonymous correction's id, for a labeller to confirm."""
    r = httpx.post(f"{url}/api/v1/predict", json={"image": b64(png(images.images[0]))})
    assert r.status_code == 200, r.text
    r = httpx.post(
        f"{url}/api/v1/predictions/{r.json()['prediction_id']}/feedback", json={"label": 4}
    )
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


def feedback_rows(service: Served) -> int:
    engine = db.make_engine(service.settings.database_url)
    with db.transaction(engine) as s:
        found = s.scalar(select(func.count()).select_from(Feedback))
    engine.dispose()
    return int(found or 0)


def labeller_labels(url: str) -> int:
    r = httpx.get(f"{url}/api/v1/review", headers={"Authorization": f"Bearer {LABELLER_TOKEN}"})
    assert r.status_code == 200, r.text
    return int(r.json()["remaining"])


@pytest.mark.parametrize("value", ["9" * 5000 + ".ab", "²1790000000.ab", "1²." + "0" * 64, "."])
@pytest.mark.parametrize("cookie", ["digitlab_viewer", "digitlab_labeller"])
def test_a_malformed_cookie_is_a_signed_out_visitor(
    service: Served, cookie: str, value: str
) -> None:
    # Raw bytes: the server reads a header as Latin-1, so byte 0xB2 arrives as "²".
    raw = {"Cookie": f"{cookie}={value}".encode("latin-1")}
    with httpx.Client(base_url=service.url, headers=raw) as client:
        assert client.get("/login").status_code == 200
        assert client.get("/").status_code == 200
        history = client.get("/history")
        assert history.status_code == 303 and history.headers["location"].startswith("/login")
        assert client.get("/review").status_code == 303
        assert client.get("/api/v1/predictions").status_code == 401


def test_the_bearer_scheme_in_any_case_and_no_bare_token(
    service: Served, mnist_test: Split
) -> None:
    url = service.url
    for header in (f"Bearer {VIEWER_TOKEN}", f"bearer {VIEWER_TOKEN}", f"BEARER  {VIEWER_TOKEN}"):
        r = httpx.get(f"{url}/api/v1/predictions", headers={"Authorization": header})
        assert r.status_code == 200, (header, r.text)
    for header in (VIEWER_TOKEN, f"Basic {VIEWER_TOKEN}", f"Token {VIEWER_TOKEN}"):
        r = httpx.get(f"{url}/api/v1/predictions", headers={"Authorization": header})
        assert r.status_code == 401, (header, r.text)
    # A bare labeller token on a correction: refused, not stored as an anonymous one.
    made = httpx.post(f"{url}/api/v1/predict", json={"image": b64(png(mnist_test.images[1]))})
    pid = made.json()["prediction_id"]
    feedback = f"{url}/api/v1/predictions/{pid}/feedback"
    r = httpx.post(feedback, json={"label": 2}, headers={"Authorization": LABELLER_TOKEN})
    assert r.status_code == 401, r.text
    assert feedback_rows(service) == 0


def test_wrong_bearer_tokens_are_limited_per_client(fresh: Served) -> None:
    service = fresh
    url = f"{service.url}/api/v1/predictions"
    wrong = [httpx.get(url, headers={"Authorization": f"Bearer guess-{i}"}) for i in range(6)]
    assert [r.status_code for r in wrong] == [401] * WRONG_PER_MINUTE + [429]
    assert int(wrong[-1].headers["retry-after"]) >= 1
    assert "too many wrong tokens" in wrong[-1].json()["detail"]
    # The right token too, else a 200 among the 429s would tell the guesser it won.
    right = httpx.get(url, headers={"Authorization": f"Bearer {VIEWER_TOKEN}"})
    assert right.status_code == 429
    page = httpx.post(f"{service.url}/login", data={"token": VIEWER_TOKEN})
    assert page.status_code == 429 and "too many wrong tokens" in page.text.lower()
    # Requests without a credential are not this limit's business.
    assert httpx.get(f"{service.url}/healthz").status_code == 200


def test_wrong_tokens_on_the_sign_in_form_are_limited(fresh: Served) -> None:
    service = fresh
    answers = [httpx.post(f"{service.url}/login", data={"token": f"guess-{i}"}) for i in range(6)]
    assert [r.status_code for r in answers] == [401] * WRONG_PER_MINUTE + [429]
    assert int(answers[-1].headers["retry-after"]) >= 1
    r = httpx.get(
        f"{service.url}/api/v1/predictions", headers={"Authorization": f"Bearer {VIEWER_TOKEN}"}
    )
    assert r.status_code == 429


def test_a_cookie_signed_change_from_another_origin_writes_nothing(
    service: Served, mnist_test: Split
) -> None:
    url = service.url
    feedback_id = a_correction(url, mnist_test)
    confirm = f"/api/v1/feedback/{feedback_id}/confirm"
    with httpx.Client(base_url=url) as browser:
        signed = browser.post("/login", data={"token": LABELLER_TOKEN}, headers={"Origin": url})
        assert signed.status_code == 303 and "digitlab_labeller" in browser.cookies
        before = labeller_labels(url)
        for headers in (
            {"Origin": "http://127.0.0.1:1"},
            {"Origin": "null"},
            {"Sec-Fetch-Site": "same-site", "Origin": "http://127.0.0.1:1"},
            {"Sec-Fetch-Site": "cross-site"},
        ):
            r = browser.post(confirm, headers=headers)
            assert r.status_code == 403, (headers, r.text)
            assert "another site's page" in r.json()["detail"]
            assert r.headers["x-frame-options"] == "DENY"
        assert labeller_labels(url) == before
        r = browser.post(confirm, headers={"Sec-Fetch-Site": "same-origin", "Origin": url})
        assert r.status_code == 201, r.text
    # Signing in from another origin's form is refused too.
    r = httpx.post(
        f"{url}/login", data={"token": LABELLER_TOKEN}, headers={"Origin": "http://evil"}
    )
    assert r.status_code == 403
