"""Hostile pages on another port of 127.0.0.1, in a real Chromium with a signed-in
labeller: the same *site* as the service, so the SameSite=Strict cookie goes with their
requests. Their form post and fetch to `POST /api/v1/feedback/{id}/confirm` must write
nothing (403: not this origin), and /review must not render inside their iframe. The
service's own page still confirms with the same cookie: the attacks fail for the right
reason."""

from __future__ import annotations

import base64
import io
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import httpx
import pytest
from PIL import Image
from playwright.sync_api import Browser, BrowserContext, Page, expect
from sqlalchemy import text

from digitlab.config import Settings
from digitlab.data import Split
from digitlab.store import db
from tests.utils.onnx_model import make_model
from tests.web.conftest import serve, web_settings

LABELLER_TOKEN = "csrf-labeller-token-3b9e"


@dataclass(frozen=True)
class Site:
    url: str
    settings: Settings
    feedback_ids: list[int]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, mnist_train: Split) -> Iterator[Site]:
    """A service with a labeller token and three anonymous corrections to confirm."""
    root = tmp_path_factory.mktemp("web-csrf")
    make_model(root / "models", mnist_train)
    settings = web_settings(root, root / "models", labeller_token=LABELLER_TOKEN)
    for url in serve(settings):
        ids = []
        for pixels in mnist_train.images[:3]:
            out = io.BytesIO()
            Image.fromarray(pixels).save(out, format="PNG")
            body = {"image": base64.b64encode(out.getvalue()).decode()}
            prediction = httpx.post(f"{url}/api/v1/predict", json=body, timeout=30).json()
            r = httpx.post(
                f"{url}/api/v1/predictions/{prediction['prediction_id']}/feedback",
                json={"label": 3},
                timeout=30,
            )
            assert r.status_code == 201, r.text
            ids.append(r.json()["id"])
        yield Site(url, settings, ids)


class Pages(BaseHTTPRequestHandler):
    pages: ClassVar[dict[str, str]] = {}

    def do_GET(self) -> None:
        body = self.pages.get(self.path, "").encode()
        self.send_response(200 if body else 404)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def attacker(site: Site) -> Iterator[str]:
    """Another origin on the same host: 127.0.0.1 on another port."""
    first, second, _ = site.feedback_ids
    target = f"{site.url}/api/v1/feedback"
    Pages.pages = {
        "/form": f"""<!doctype html><body>
            <form id="f" method="post" action="{target}/{first}/confirm"></form>
            <script>document.getElementById("f").submit();</script></body>""",
        "/fetch": f"""<!doctype html><body><p id="done">sending</p><script>
            fetch("{target}/{second}/confirm", {{method: "POST", mode: "no-cors",
                   credentials: "include"}})
              .finally(() => {{ document.getElementById("done").textContent = "sent"; }});
            </script></body>""",
        "/frame": f"""<!doctype html><body>
            <iframe id="victim" src="{site.url}/review" width="800" height="600"></iframe>
            </body>""",
    }
    server = ThreadingHTTPServer(("127.0.0.1", 0), Pages)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def labeller_rows(settings: Settings) -> int:
    engine = db.make_engine(settings.database_url)
    with db.transaction(engine) as s:
        found = s.execute(text("SELECT count(*) FROM feedback WHERE source = 'labeller'")).scalar()
    engine.dispose()
    return int(found or 0)


@pytest.fixture
def signed_in(browser: Browser, site: Site) -> Iterator[tuple[BrowserContext, Page]]:
    context = browser.new_context()
    page = context.new_page()
    page.goto(f"{site.url}/login?next=/review")
    page.fill("#token", LABELLER_TOKEN)
    page.click("button[type=submit]")
    page.wait_for_url(f"{site.url}/review")
    yield context, page
    context.close()


def test_another_ports_form_and_fetch_write_nothing(
    signed_in: tuple[BrowserContext, Page], site: Site, attacker: str
) -> None:
    _, page = signed_in
    before = labeller_rows(site.settings)

    page.goto(f"{attacker}/form")
    page.wait_for_url(f"{site.url}/api/v1/feedback/*/confirm")
    assert "refused a change sent from another site's page" in page.content()

    page.goto(f"{attacker}/fetch")
    expect(page.locator("#done")).to_have_text("sent")
    assert labeller_rows(site.settings) == before, "another origin confirmed a correction"

    # The same cookie from the service's own page does confirm: the refusal above was the
    # origin check, not a missing or expired sign-in.
    page.goto(f"{site.url}/review")
    status = page.evaluate(
        f"fetch('/api/v1/feedback/{site.feedback_ids[2]}/confirm', {{method: 'POST'}})"
        ".then(r => r.status)"
    )
    assert status == 201
    assert labeller_rows(site.settings) == before + 1


def test_review_does_not_render_in_another_origins_frame(
    signed_in: tuple[BrowserContext, Page], site: Site, attacker: str
) -> None:
    _, page = signed_in
    refusals: list[str] = []
    page.on("console", lambda m: refusals.append(m.text) if "frame" in m.text.lower() else None)
    page.goto(f"{attacker}/frame")
    page.wait_for_load_state("load")
    page.wait_for_timeout(500)
    assert len(page.frames) == 2
    # Refused, Chromium puts its own error page in the frame: never the Review page.
    assert "review.js" not in page.frames[1].content()
    assert any("frame-ancestors" in m or "X-Frame-Options" in m for m in refusals), refusals


def test_signed_in_pages_load_under_the_policy(
    signed_in: tuple[BrowserContext, Page], site: Site, tmp_path: Path
) -> None:
    """Every page and /docs, /redoc under the Content-Security-Policy: nothing refused,
    nothing loaded from another origin (the docs' assets are the service's own)."""
    # `requestfinished`: a request the policy blocked is reported as failed, not finished.
    context, page = signed_in
    violations: list[str] = []
    foreign: list[str] = []
    page.on(
        "console", lambda m: violations.append(m.text) if "Content Security" in m.text else None
    )
    context.on(
        "requestfinished",
        lambda r: foreign.append(r.url) if not r.url.startswith(site.url) else None,
    )
    for path in ("/", "/history", "/models", "/monitor", "/runs", "/review", "/login"):
        page.goto(f"{site.url}{path}")
        page.wait_for_load_state("networkidle")
    # A prediction on Recognise draws its probability bars (widths set from script).
    page.goto(f"{site.url}/")
    digit = tmp_path / "digit.png"
    Image.new("L", (28, 28), 0).save(digit)
    page.set_input_files("#file", str(digit))
    page.wait_for_selector("#bars .fill")
    widths = page.eval_on_selector_all("#bars .fill", "els => els.map(e => e.style.width)")
    assert len(widths) == 10 and all(w.endswith("%") for w in widths), widths
    page.goto(f"{site.url}/docs")
    page.wait_for_selector(".opblock", timeout=20_000)  # Swagger UI drew the operations
    page.goto(f"{site.url}/redoc")
    page.wait_for_selector("h1", timeout=20_000)  # ReDoc drew the schema's title
    # ReDoc's "API docs by Redocly" footer points at its CDN's logo: refused, not loaded.
    assert [v for v in violations if "cdn.redoc.ly/redoc/logo-mini.svg" not in v] == []
    assert [u for u in foreign if not u.startswith(("data:", "blob:"))] == [], foreign
