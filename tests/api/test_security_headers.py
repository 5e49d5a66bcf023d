"""Every answer of a real `digitlab serve` carries the security headers: pages, API
answers, errors the app or its middleware make, static files; and /docs, /redoc load
nothing from another site (their assets are the service's own, served here)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.api.conftest import VIEWER_TOKEN, ready_settings
from tests.utils.served import Served, serving

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory, linear_models: Path) -> Iterator[Served]:
    root = tmp_path_factory.mktemp("headers")
    settings = ready_settings(root, f"sqlite:///{root / 'h.db'}", linear_models)
    with serving(settings, root, DIGITLAB_VIEWER_TOKEN=VIEWER_TOKEN) as served:
        yield served


ANSWERS = [
    ("GET", "/", None, 200),
    ("GET", "/login", None, 200),
    ("GET", "/history", None, 303),  # to /login
    ("GET", "/static/app.css", None, 200),
    ("GET", "/api/v1/predictions", None, 401),
    ("GET", "/api/v1/no-such-thing", None, 404),
    ("POST", "/api/v1/predict", b"{", 422),
    ("POST", "/api/v1/predict", b"x" * (6 * 1024 * 1024), 413),  # the body limit's answer
    ("GET", "/openapi.json", None, 200),
    ("GET", "/docs", None, 200),
    ("GET", "/metrics", None, 200),
]


@pytest.mark.parametrize(("method", "path", "body", "status"), ANSWERS)
def test_every_answer_carries_the_security_headers(
    service: Served, method: str, path: str, body: bytes | None, status: int
) -> None:
    headers = {"Content-Type": "application/json"} if body else {}
    r = httpx.request(method, f"{service.url}{path}", content=body, headers=headers, timeout=30)
    assert r.status_code == status, r.text[:300]
    policy = dict(
        part.strip().split(" ", 1) for part in r.headers["content-security-policy"].split(";")
    )
    assert policy["script-src"] == "'self'" and policy["style-src"] == "'self'"
    assert policy["frame-ancestors"] == "'none'" and policy["object-src"] == "'none'"
    assert policy["base-uri"] == "'self'"
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["x-frame-options"] == "DENY"
    assert r.headers["referrer-policy"] == "same-origin"


def test_the_api_docs_load_only_this_services_files(service: Served) -> None:
    for page in ("/docs", "/redoc"):
        html = httpx.get(f"{service.url}{page}").text
        sources = re.findall(r'(?:src|href)="([^"]+)"', html)
        assert sources and all(s.startswith("/static/docs/") for s in sources), sources
        assert "<script>" not in html  # no inline script: the policy would refuse it
        for source in sources:
            asset = httpx.get(f"{service.url}{source}")
            assert asset.status_code == 200 and len(asset.content) > 100, source
