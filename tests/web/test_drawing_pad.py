"""The drawing pad both Recognise pads share (static/pad.js), in Chromium: a stroke paints
ink, Undo takes back the last stroke only, Clear leaves white paper, a tap leaves a dot;
the number pad clears the same way and hides the last reading."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
from playwright.sync_api import Page, expect

from digitlab.data import Split
from digitlab.evaluation.penpaths import draw
from tests.utils.onnx_model import make_model
from tests.web.conftest import serve, web_settings

INK = """(pad) => { const c = document.querySelector(pad);
  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  let n = 0; for (let i = 0; i < d.length; i += 4) if (d[i] < 128) n++; return n; }"""


@pytest.fixture(scope="module")
def pad_site(tmp_path_factory: pytest.TempPathFactory, mnist_train: Split) -> Iterator[str]:
    root = tmp_path_factory.mktemp("web-pad")
    make_model(root / "models", mnist_train)
    yield from serve(web_settings(root, root / "models"))


def line(x0: float, y0: float, x1: float, y1: float) -> list[np.ndarray]:
    return [np.linspace([x0, y0], [x1, y1], 8)]


def ink(page: Page, pad: str = "#pad") -> int:
    return int(page.evaluate(INK, pad))


def test_undo_takes_back_the_last_stroke_and_clear_leaves_white_paper(
    pad_site: str, page: Page
) -> None:
    page.goto(pad_site + "/")
    assert ink(page) == 0
    draw(page, line(0.2, 0.2, 0.2, 0.8))
    one = ink(page)
    draw(page, line(0.5, 0.2, 0.8, 0.8))
    two = ink(page)
    assert 0 < one < two
    page.locator("#undo").click()
    assert ink(page) == one  # the first stroke is painted exactly as before
    page.locator("#clear").click()
    assert ink(page) == 0
    box = page.locator("#pad").bounding_box()
    assert box is not None
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    dot = ink(page)
    assert dot > 100  # a tap is a dot as wide as the pen, not nothing
    page.locator("#pad").press("Escape")  # the keyboard clears too
    assert ink(page) == 0


def test_the_number_pad_clears_its_strokes_and_its_reading(pad_site: str, page: Page) -> None:
    page.goto(pad_site + "/")
    draw(page, line(0.1, 0.2, 0.1, 0.8) + line(0.3, 0.2, 0.3, 0.8), pad="#number-pad")
    assert ink(page, "#number-pad") > 0
    page.get_by_role("button", name="Read the number").click()
    expect(page.locator("#number-result")).to_be_visible()
    page.locator("#number-clear").click()
    assert ink(page, "#number-pad") == 0
    expect(page.locator("#number-result")).to_be_hidden()
