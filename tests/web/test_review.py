"""The Review page in a real Chromium: a labeller signs in, labels 20 inputs of the
queue with the keyboard alone (20 labeller corrections stored), skips with space, undoes
with Backspace; the page is readable at phone width. Takes the docs' screenshot."""

from __future__ import annotations

import base64
import io
import shutil
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
from PIL import Image
from playwright.sync_api import Browser, Page, expect
from sqlalchemy import text

from digitlab.config import Settings
from digitlab.data import Split
from digitlab.registry.versions import ModelVersion
from digitlab.store import db
from tests.web.conftest import screenshot, serve, web_settings

LABELLER_TOKEN = "web-labeller-token-0d7e"
INPUTS = 25


@dataclass(frozen=True)
class Site:
    url: str
    settings: Settings


@pytest.fixture(scope="module")
def review_site(
    tmp_path_factory: pytest.TempPathFactory, trained_fast_model: ModelVersion, mnist_test: Split
) -> Iterator[Site]:
    root = tmp_path_factory.mktemp("web-review")
    model_dir = root / "models"
    shutil.copytree(trained_fast_model.path.parent, model_dir)
    settings = web_settings(root, model_dir, labeller_token=LABELLER_TOKEN)
    for url in serve(settings):
        images = []
        for pixels in mnist_test.images[:INPUTS]:
            out = io.BytesIO()
            Image.fromarray(pixels).save(out, format="PNG")
            images.append({"image": base64.b64encode(out.getvalue()).decode()})
        r = httpx.post(f"{url}/api/v1/predict/batch", json={"images": images}, timeout=30)
        assert r.status_code == 200, r.text
        yield Site(url, settings)


def labeller_rows(settings: Settings) -> int:
    engine = db.make_engine(settings.database_url)
    with db.transaction(engine) as s:
        found = s.execute(text("SELECT count(*) FROM feedback WHERE source = 'labeller'")).scalar()
    engine.dispose()
    return int(found or 0)


def sign_in(page: Page, site: Site) -> None:
    page.goto(f"{site.url}/review")
    assert "/login" in page.url  # not signed in as a labeller yet
    page.fill("#token", LABELLER_TOKEN)
    page.keyboard.press("Enter")
    page.wait_for_url(f"{site.url}/review")


def shown_input(page: Page) -> str:
    return str(page.get_attribute("#digit", "src"))


def test_twenty_labels_from_the_keyboard_are_twenty_labeller_corrections(
    page: Page, review_site: Site
) -> None:
    sign_in(page, review_site)
    expect(page.locator("#left")).to_have_text(f"{INPUTS} left")
    expect(page.locator("#top3 li")).to_have_count(3)
    screenshot(page, "review")
    for k in range(20):
        page.keyboard.press(str(k % 10))
    expect(page.locator("#left")).to_have_text(f"{INPUTS - 20} left", timeout=30_000)
    assert labeller_rows(review_site.settings) == 20

    before = shown_input(page)
    page.keyboard.press(" ")
    expect(page.locator("#status")).to_contain_text("Skipped input")
    assert shown_input(page) != before
    skipped_to = shown_input(page)
    page.keyboard.press("7")
    expect(page.locator("#left")).to_have_text(f"{INPUTS - 21} left")
    assert labeller_rows(review_site.settings) == 21
    page.keyboard.press("Backspace")
    expect(page.locator("#status")).to_contain_text("is back")
    expect(page.locator("#left")).to_have_text(f"{INPUTS - 20} left")
    assert shown_input(page) == skipped_to and labeller_rows(review_site.settings) == 20


def test_the_page_fits_a_phone_and_needs_the_labeller(browser: Browser, review_site: Site) -> None:
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
    page = context.new_page()
    try:
        sign_in(page, review_site)
        expect(page.locator("#top3 li")).to_have_count(3)
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 390, f"the page scrolls sideways at phone width ({width} px)"
        box = page.locator("#digit").bounding_box()
        assert box is not None and box["width"] >= 200  # large enough to judge
        screenshot(page, "review-phone")
    finally:
        context.close()
    # Without the sign-in the queue's API refuses, and the page sends one to /login.
    r = httpx.get(f"{review_site.url}/api/v1/review")
    assert r.status_code == 401 and "labeller token" in r.json()["detail"]
