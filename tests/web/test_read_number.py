"""A number written with the mouse on the Recognise page's number pad in Chromium is read:
one box per digit drawn, each drawn over the pad with its digit; the reading is stored,
its correction too."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import select

from digitlab.data import Split
from digitlab.evaluation import penpaths
from digitlab.store import db
from digitlab.store.models import Reading
from tests.utils.onnx_model import make_model
from tests.web.conftest import serve, web_settings


@pytest.fixture(scope="module")
def number_site(
    tmp_path_factory: pytest.TempPathFactory, mnist_train: Split
) -> Iterator[tuple[str, str]]:
    # A tiny linear model: this test guards the boxes and the page, not the accuracy
    # (bench/read_numbers.py measures that with the served model).
    root = tmp_path_factory.mktemp("web-numbers")
    make_model(root / "models", mnist_train)
    settings = web_settings(root, root / "models")
    for url in serve(settings):
        yield url, settings.database_url


def test_a_drawn_number_is_read_and_shown_with_its_boxes(
    number_site: tuple[str, str], page: Page
) -> None:
    site, database_url = number_site
    page.goto(site + "/")
    digits = penpaths.sample(10, seed=4)[2:6]  # a 2, a 3, a 4 and a 5
    for k, (_, strokes) in enumerate(digits):
        # Each digit in its own quarter of the pad, as a person writes a number.
        placed = [
            np.stack([(k + 0.15 + 0.7 * s[:, 0]) / 4, 0.1 + 0.8 * s[:, 1]], 1) for s in strokes
        ]
        penpaths.draw(page, placed, pad="#number-pad")
    page.get_by_role("button", name="Read the number").click()
    expect(page.locator("#number-status")).to_contain_text("4 digits")
    text = page.locator("#number-text").inner_text()
    assert len(text) == 4 and text.isdigit()
    # The boxes are drawn in red over the pad: red pixels where there were none.
    red = page.evaluate(
        """() => { const c = document.getElementById('number-pad');
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        let n = 0; for (let i = 0; i < d.length; i += 4)
          if (d[i] > 180 && d[i + 1] < 90 && d[i + 2] < 90) n++; return n; }"""
    )
    assert red > 200

    page.locator("#number-correct").fill("2345")
    page.get_by_role("button", name="Correct it").click()
    expect(page.locator("#number-status")).to_contain_text("recorded that it was 2345")
    engine = db.make_engine(database_url)
    with db.transaction(engine) as session:
        stored = session.execute(select(Reading.text, Reading.corrected_text)).one()
    engine.dispose()
    assert stored == (text, "2345")
    # Listed in the History with its correction.
    page.goto(site + "/history")
    row = page.locator("table.readings tbody tr").first
    expect(row.locator(".reading-text")).to_have_text(text)
    expect(row).to_contain_text("2345 (anonymous)")


def test_the_page_keeps_to_its_own_scripts(number_site: tuple[str, str], page: Page) -> None:
    page.goto(number_site[0] + "/")
    assert page.locator("script[src='/static/numbers.js']").count() == 1
    assert page.locator("[style]").count() == 0
