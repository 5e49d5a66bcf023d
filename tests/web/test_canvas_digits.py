"""Digits drawn with the mouse on the Recognise page's canvas, from pen strokes in the
ways people write them (slanted, small or large, anywhere on the pad), are read by the
served model: the canvas gives it the same kind of image an upload does."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from digitlab.evaluation import penpaths


def test_drawn_digits_are_recognised(site: str, page: Page) -> None:
    page.goto(site + "/")
    read = []
    for label, strokes in penpaths.sample(30, seed=3):
        page.get_by_role("button", name="Clear", exact=True).click()
        penpaths.draw(page, strokes)
        page.get_by_role("button", name="Recognise").click()
        expect(page.locator("#status")).to_contain_text("It looks like a")
        read.append((label, int(page.locator("#digit").inner_text())))
        # Reset the status so the next wait sees the next answer, not this one.
        page.evaluate("document.getElementById('status').textContent = ''")
    wrong = [(label, seen) for label, seen in read if label != seen]
    assert len(wrong) <= 2, f"misread (drawn, read): {wrong}"
    # What the model saw is the normalised 28x28 digit, as for an upload.
    assert page.evaluate("document.getElementById('saw').naturalWidth") == 28


def test_every_digit_has_a_way_to_be_drawn() -> None:
    assert sorted(penpaths.TEMPLATES) == list(range(10))
    for label, strokes in penpaths.sample(50, seed=0):
        assert 0 <= label <= 9 and strokes
        for path in strokes:
            assert path.ndim == 2 and path.shape[1] == 2
            assert float(path.min()) >= 0.0 and float(path.max()) <= 1.0
