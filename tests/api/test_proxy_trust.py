"""Whom `digitlab serve` believes about the client: exactly the proxy in
DIGITLAB_FORWARDED_ALLOW_IPS, nobody by default. A real `digitlab serve` process (one
worker and several), SQLite and PostgreSQL.

- Directly reached, a client cannot name another address in X-Forwarded-For to reset its
  rate-limit bucket, nor claim https in X-Forwarded-Proto.
- Behind the trusted proxy, two clients have two buckets and a sign-in over https gets a
  `Secure` cookie.
- An image key in a URL stays out of the access log.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from digitlab.data import Split
from digitlab.store.testing_pg import PostgresServer
from tests.api.conftest import VIEWER_TOKEN, b64, png, ready_settings
from tests.utils.served import Served, serving

pytestmark = pytest.mark.timeout(180)
LIMIT = {"DIGITLAB_ANONYMOUS_FEEDBACK_PER_MINUTE": "2", "DIGITLAB_VIEWER_TOKEN": VIEWER_TOKEN}


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'proxy.db'}"
    server: PostgresServer = request.getfixturevalue("pg_server")
    return server.create_database(f"proxy_{uuid.uuid4().hex[:10]}")


def served(tmp_path: Path, database: str, linear_models: Path, **env: str) -> Iterator[Served]:
    with serving(ready_settings(tmp_path, database, linear_models), tmp_path, **env) as s:
        yield s


def predictions(url: str, images: Split, n: int) -> list[int]:
    made = []
    for pixels in images.images[:n]:
        r = httpx.post(f"{url}/api/v1/predict", json={"image": b64(png(pixels))}, timeout=30)
        assert r.status_code == 200, r.text
        made.append(r.json()["prediction_id"])
    return made


def correct(url: str, prediction_id: int, forwarded_for: str) -> int:
    r = httpx.post(
        f"{url}/api/v1/predictions/{prediction_id}/feedback",
        json={"label": 1},
        headers={"X-Forwarded-For": forwarded_for},
        timeout=30,
    )
    return r.status_code


def sign_in(url: str, proto: str) -> str:
    r = httpx.post(
        f"{url}/login",
        data={"token": VIEWER_TOKEN},
        headers={"X-Forwarded-Proto": proto},
        timeout=30,
    )
    assert r.status_code == 303, r.text
    return r.headers["set-cookie"]


def test_a_direct_client_cannot_reset_its_bucket_or_claim_https(
    tmp_path: Path, database: str, linear_models: Path, mnist_test: Split
) -> None:
    for service in served(tmp_path, database, linear_models, **LIMIT):
        made = predictions(service.url, mnist_test, 3)
        # Three "different clients", all really this one: its bucket of 2 is spent.
        codes = [correct(service.url, p, f"203.0.113.{i}") for i, p in enumerate(made)]
        assert codes == [201, 201, 429]
        assert "secure" not in sign_in(service.url, "https").lower()


def test_behind_the_trusted_proxy_each_client_has_its_bucket_and_https_a_secure_cookie(
    tmp_path: Path, database: str, linear_models: Path, mnist_test: Split
) -> None:
    proxy = {"DIGITLAB_FORWARDED_ALLOW_IPS": "127.0.0.1", **LIMIT}
    for service in served(tmp_path, database, linear_models, **proxy):
        made = predictions(service.url, mnist_test, 4)
        first = [correct(service.url, p, "203.0.113.7") for p in made[:3]]
        assert first == [201, 201, 429]
        assert correct(service.url, made[3], "198.51.100.9") == 201  # another client
        cookie = sign_in(service.url, "https")
        assert re.search(r";\s*secure", cookie, re.I), cookie
        assert "secure" not in sign_in(service.url, "http").lower()


def test_worker_processes_trust_no_proxy_by_default(tmp_path: Path, linear_models: Path) -> None:
    settings = ready_settings(tmp_path, f"sqlite:///{tmp_path / 'w.db'}", linear_models)
    with serving(settings, tmp_path, DIGITLAB_WORKERS="2", **LIMIT) as service:
        for _ in range(4):  # whichever worker answers
            assert "secure" not in sign_in(service.url, "https").lower()
    with serving(
        settings, tmp_path, DIGITLAB_WORKERS="2", DIGITLAB_FORWARDED_ALLOW_IPS="127.0.0.1", **LIMIT
    ) as service:
        for _ in range(4):
            assert "secure" in sign_in(service.url, "https").lower()


def test_image_keys_stay_out_of_the_access_log(
    tmp_path: Path, linear_models: Path, mnist_test: Split
) -> None:
    settings = ready_settings(tmp_path, f"sqlite:///{tmp_path / 'k.db'}", linear_models)
    with serving(settings, tmp_path, **LIMIT) as service:
        r = httpx.post(
            f"{service.url}/api/v1/predict",
            json={"image": b64(png(mnist_test.images[0]))},
            timeout=30,
        )
        image_url = r.json()["image_url"]
        key = image_url.split("key=")[1]
        assert httpx.get(f"{service.url}{image_url}", timeout=30).status_code == 200
        assert httpx.get(f"{service.url}{image_url}x", timeout=30).status_code == 401
    log = "\n".join(p.read_text() for p in tmp_path.glob("serve-*.log"))
    assert "image.png?key=<hidden>" in log
    assert key not in log
