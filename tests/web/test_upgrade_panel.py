"""The Models page's upgrade panel in a real browser, under the Content-Security-Policy:
it shows what trains and how far, follows the status file while the trainer works, and
shows why when the upgrade failed, with the first model still tagged serving."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, expect

from digitlab.data import Split
from digitlab.registry.upgrade_status import UpgradeStatus, write_status
from tests.utils.onnx_model import make_model
from tests.web.conftest import serve, web_settings

FIRST = "20261127-000000-mnist-linear"


@pytest.fixture
def upgrading_site(tmp_path: Path, mnist_train: Split) -> Iterator[tuple[str, Path]]:
    make_model(tmp_path / "models", mnist_train, version=FIRST)
    status_file = tmp_path / "var" / "upgrade.json"
    settings = web_settings(tmp_path, tmp_path / "models", upgrade_status_file=status_file)
    for url in serve(settings):
        yield url, status_file


def test_the_panel_follows_the_trainer_and_says_why_it_failed(
    upgrading_site: tuple[str, Path], browser: Browser
) -> None:
    url, status_file = upgrading_site
    context = browser.new_context()
    page = context.new_page()
    violations: list[str] = []
    errors: list[str] = []
    page.on(
        "console", lambda m: violations.append(m.text) if "Content Security" in m.text else None
    )
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    status = UpgradeStatus(
        state="training", recipe="best", serving=FIRST, epoch=2, epochs=18, fraction=0.07,
        seconds_left=400,
    )  # fmt: skip
    write_status(status_file, status)
    page.goto(f"{url}/models")
    panel = page.locator("#upgrade")
    expect(panel).to_contain_text("training `best`: epoch 2/18, about 6 min 40 s left")
    expect(page.locator("#upgrade-serving")).to_contain_text(FIRST)
    # The trainer moves on: the page follows without a reload.
    status.epoch, status.fraction, status.seconds_left = 5, 0.25, 300
    write_status(status_file, status)
    expect(page.locator("#upgrade-epoch")).to_have_text("5/18", timeout=10_000)
    expect(panel).to_contain_text("about 5 min 00 s left")
    # It fails: the page reloads and says why; the first model is still the one serving.
    status.state = "failed"
    status.reason = f"the upgrade's trainer stopped (killed by signal 9); {FIRST} keeps serving"
    write_status(status_file, status)
    expect(panel).to_have_attribute("data-state", "failed", timeout=10_000)
    expect(panel).to_contain_text("killed by signal 9")
    expect(page.locator(f"#model-{FIRST} .tag")).to_have_text("serving")
    context.close()
    assert violations == [] and errors == [], (violations, errors)
