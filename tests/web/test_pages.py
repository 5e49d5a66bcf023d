"""The pages in a real browser: draw, upload, give feedback, browse history and models."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image
from playwright.sync_api import Page, expect

from digitlab.data import Split
from tests.web.conftest import screenshot


def trace_digit(page: Page, image: np.ndarray) -> None:
    """Draw `image` (28x28, light ink on black) on the pad with mouse strokes: one
    stroke per run of inked pixels in each row, as a person would hatch it in."""
    box = page.locator("#pad").bounding_box()
    assert box is not None
    cell = box["width"] / 28
    for y in range(28):
        inked = np.flatnonzero(image[y] >= 128)
        if not inked.size:
            continue
        runs = np.split(inked, np.flatnonzero(np.diff(inked) > 1) + 1)
        for run in runs:
            top = box["y"] + (y + 0.5) * cell
            page.mouse.move(box["x"] + (run[0] + 0.5) * cell, top)
            page.mouse.down()
            page.mouse.move(box["x"] + (run[-1] + 0.5) * cell, top, steps=3)
            page.mouse.up()


def test_draw_a_digit_and_see_what_the_model_saw(site: str, page: Page, mnist_test: Split) -> None:
    page.goto(site + "/")
    expect(page.get_by_role("heading", name="Draw or upload a digit")).to_be_visible()
    index = 0  # the first test digit: a 7
    trace_digit(page, mnist_test.images[index])
    page.get_by_role("button", name="Recognise").click()
    expect(page.locator("#status")).to_contain_text("It looks like a")
    assert page.locator("#digit").inner_text() == str(mnist_test.labels[index])
    assert page.locator("#bars tr").count() == 10
    saw = page.locator("#saw")
    expect(saw).to_have_attribute("src", r"/api/v1/inputs/1/image.png")
    assert page.evaluate("document.getElementById('saw').naturalWidth") == 28
    screenshot(page, "recognise")


def test_upload_a_png(site: str, page: Page, mnist_test: Split, tmp_path: Path) -> None:
    # A photo-like upload: dark ink on a large light background, off-centre.
    digit = Image.fromarray(255 - mnist_test.images[1]).resize((140, 140))
    canvas = Image.new("L", (400, 300), 255)
    canvas.paste(digit, (40, 120))
    path = tmp_path / "two.png"
    buffer = io.BytesIO()
    canvas.save(buffer, format="PNG")
    path.write_bytes(buffer.getvalue())
    page.goto(site + "/")
    page.locator("#file").set_input_files(str(path))
    expect(page.locator("#status")).to_contain_text("It looks like a")
    assert page.locator("#digit").inner_text() == str(mnist_test.labels[1])


def test_feedback_shows_up_in_history(site: str, page: Page, mnist_test: Split) -> None:
    page.goto(site + "/")
    trace_digit(page, mnist_test.images[2])
    page.get_by_role("button", name="Recognise").click()
    expect(page.locator("#status")).to_contain_text("It looks like a")
    predicted = int(page.locator("#digit").inner_text())
    correction = (predicted + 1) % 10
    page.locator(f'#feedback-buttons button[data-label="{correction}"]').click()
    expect(page.locator("#status")).to_contain_text(f"recorded that it was a {correction}")

    page.goto(site + "/history")
    first = page.locator("table.history tbody tr").first
    cells = first.locator("td")
    assert cells.nth(2).inner_text() == str(predicted)
    assert cells.nth(4).inner_text() == str(correction)
    expect(first).to_have_class("wrong")
    page.goto(site + "/history?wrong=1")
    assert page.locator("table.history tbody tr").count() == 1
    screenshot(page, "history")


def test_models_page_shows_the_serving_card_with_figures(site: str, page: Page) -> None:
    page.goto(site + "/models")
    card = page.locator("article.card").first
    expect(card.locator(".tag")).to_have_text("serving")
    expect(card).to_contain_text("Test accuracy")
    for img in card.locator("img").all():
        img.scroll_into_view_if_needed()
        expect(img).to_be_visible()
        expect(img).to_have_js_property("complete", True)
        assert img.evaluate("el => el.naturalWidth") > 0
    screenshot(page, "models")


def test_pages_without_a_model_say_so(empty_site: str, page: Page) -> None:
    for path in ("/", "/history", "/models"):
        page.goto(empty_site + path)
        expect(page.get_by_role("alert")).to_contain_text("The service is not ready")
    expect(page.locator("main")).to_contain_text("No model yet")


def test_phone_sized_screen_keeps_the_pad_usable(site: str, page: Page) -> None:
    page.set_viewport_size({"width": 375, "height": 740})
    page.goto(site + "/")
    box = page.locator("#pad").bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 375
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 375, "no horizontal scrolling on a phone"
