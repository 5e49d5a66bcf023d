"""A real service (uvicorn in a thread, SQLite, the session's trained model) and a real
headless Chromium driven by Playwright. Debian's /usr/bin/chromium: never a download."""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
from playwright.sync_api import Browser, Page, sync_playwright

from digitlab.app import create_app
from digitlab.config import Settings
from digitlab.registry.versions import ModelVersion
from digitlab.store.testing_pg import free_port
from tests.conftest import MNIST_DIR, ROOT, require_package

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = ROOT / "test-artifacts" / "web"
# Without the background-networking flags Chromium keeps dialling out of this closed network.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def serve(settings: Settings) -> Iterator[str]:
    app = create_app(settings)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline, "the service did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def web_settings(root: Path, model_dir: Path, **changes: object) -> Settings:
    values: dict[str, object] = {
        "data_dir": MNIST_DIR,
        "model_dir": model_dir,
        "report_dir": root / "reports",
        "database_url": f"sqlite:///{root / 'web.db'}",
    }
    return Settings(**(values | changes), _env_file=None)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def site(
    tmp_path_factory: pytest.TempPathFactory, trained_fast_model: ModelVersion
) -> Iterator[str]:
    root = tmp_path_factory.mktemp("web")
    model_dir = root / "models"
    shutil.copytree(trained_fast_model.path.parent, model_dir)
    yield from serve(web_settings(root, model_dir))


VIEWER_TOKEN = "web-viewer-token-51c2"


@pytest.fixture(scope="module")
def guarded_site(
    tmp_path_factory: pytest.TempPathFactory, trained_fast_model: ModelVersion
) -> Iterator[str]:
    """The same service with DIGITLAB_VIEWER_TOKEN set: History needs a sign-in."""
    root = tmp_path_factory.mktemp("web-guarded")
    model_dir = root / "models"
    shutil.copytree(trained_fast_model.path.parent, model_dir)
    yield from serve(web_settings(root, model_dir, viewer_token=VIEWER_TOKEN))


@pytest.fixture(scope="module")
def empty_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A service with no model yet: the pages must say so instead of breaking."""
    root = tmp_path_factory.mktemp("web-empty")
    yield from serve(web_settings(root, root / "models"))


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    # Per module, not per session: Playwright's sync API keeps an event loop running in
    # this thread until it stops, and asyncio.run() in any later test would then fail.
    require_package(Path(CHROMIUM), "chromium")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1200, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    yield page
    context.close()
    assert not errors, f"JavaScript errors: {errors}"


def screenshot(page: Page, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
