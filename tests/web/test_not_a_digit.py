"""The not-a-digit verdict in a real browser, against the served model the suite trains:
a scribble drawn on the Recognise page's canvas is answered as not a digit and shown so
(no confident number, and the person can still say which digit it was), a digit drawn
there still gets its number, the stored prediction keeps the verdict, and History marks
the refused answer. The page's side is also tested with a demanding threshold in the
model's card, so that it holds whichever model the suite trained."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from playwright.sync_api import Locator, Page, expect

from digitlab.evaluation import penpaths
from digitlab.registry.versions import CARD_FILE, ModelVersion
from tests.web.conftest import screenshot, serve, web_settings

REFUSED = "This does not look like a digit"
# Above what the test model gives the scribble (a 10-output model is often 99% sure).
STRICT = 0.9999


def zigzag(passes: int = 14) -> penpaths.Strokes:
    """A dense scribble filling the pad: one stroke swinging from edge to edge on its
    way down, and one across it on its way right, as when a drawing is scratched out."""
    down = np.linspace(0.04, 0.96, passes)
    across = np.linspace(0.04, 0.96, passes)
    edges = np.tile([0.04, 0.96], passes // 2)
    return [np.stack([edges, down], axis=1), np.stack([across, edges], axis=1)]


def recognise(page: Page, strokes: penpaths.Strokes) -> dict[str, Any]:
    """Draw on a clear pad, press Recognise, return the service's answer."""
    page.locator("#clear").click()
    page.evaluate("document.getElementById('status').textContent = ''")
    penpaths.draw(page, strokes)
    with page.expect_response("**/api/v1/predict") as answer:
        page.locator("#recognise").click()
    body: dict[str, Any] = answer.value.json()
    return body


def stored_verdict(page: Page, site: str, prediction_id: int) -> object:
    r = page.request.get(f"{site}/api/v1/predictions/{prediction_id}")
    assert r.ok, r.text()
    return r.json()["is_digit"]


def history_row(page: Page, prediction_id: int) -> Locator:
    first_cell = page.locator("td:first-child", has_text=re.compile(rf"^{prediction_id}$"))
    return page.locator("table.history tbody tr").filter(has=first_cell)


@pytest.fixture(scope="module")
def strict_site(
    tmp_path_factory: pytest.TempPathFactory, trained_fast_model: ModelVersion
) -> Iterator[str]:
    """The served model with a demanding `verdict.threshold` in its card: it refuses the
    scribble whatever model the suite trained, so that the page's side is tested on its
    own."""
    root = tmp_path_factory.mktemp("web-strict")
    model_dir = root / "models"
    shutil.copytree(trained_fast_model.path.parent, model_dir)
    card_path = model_dir / trained_fast_model.version / CARD_FILE
    card = json.loads(card_path.read_text())
    card["verdict"] = {**card.get("verdict", {}), "threshold": STRICT}
    card_path.write_text(json.dumps(card))
    yield from serve(web_settings(root, model_dir))


def test_a_refused_answer_is_shown_as_not_a_digit(strict_site: str, page: Page) -> None:
    site = strict_site
    page.goto(site + "/")
    answer = recognise(page, zigzag())
    assert answer["is_digit"] is False, answer
    expect(page.locator("#status")).to_contain_text(REFUSED)
    expect(page.locator("#digit")).to_have_text("?")
    expect(page.locator("#confidence-name")).to_have_text("answer")
    expect(page.locator("#confidence")).to_have_text("not a digit")
    expect(page.locator("#answer")).to_have_class("answer refused")
    expect(page.locator("#feedback-legend")).to_have_text("Was it a digit? It was…")
    assert page.locator("#bars tr.best").count() == 0  # no answer singled out
    screenshot(page, "recognise-not-a-digit")
    assert stored_verdict(page, site, answer["prediction_id"]) is False

    # The person may still say which digit it was.
    page.locator("#feedback-buttons").get_by_role("button", name="8").click()
    expect(page.locator("#status")).to_contain_text("Thanks: recorded that it was a 8")

    page.goto(site + "/history")
    row = history_row(page, answer["prediction_id"])
    expect(row.locator(".badge.refused")).to_have_text("not a digit")


def test_a_scribble_is_refused_by_the_served_model(
    site: str, page: Page, trained_fast_model: ModelVersion
) -> None:
    page.goto(site + "/")
    answer = recognise(page, zigzag())
    if answer["is_digit"] and "verdict" not in trained_fast_model.card:
        # A model from before the calibrated verdict (no `verdict` in its card) judges by
        # the maximum softmax at 0.5, and it is sure of scribbles: nothing to hold it to.
        pytest.xfail(
            f"the served model took the scribble for a {answer['prediction']}"
            f" ({answer['confidence']:.1%}); waiting for a model trained to refuse"
        )
    assert answer["is_digit"] is False, answer
    expect(page.locator("#status")).to_contain_text(REFUSED)
    assert stored_verdict(page, site, answer["prediction_id"]) is False


def test_a_digit_drawn_still_gets_its_number(site: str, page: Page) -> None:
    page.goto(site + "/")
    read, ids = [], []
    for label, strokes in penpaths.sample(5, seed=11):
        answer = recognise(page, strokes)
        expect(page.locator("#status")).to_contain_text("It looks like a")
        assert answer["is_digit"] is True
        expect(page.locator("#answer")).not_to_have_class("answer refused")
        expect(page.locator("#feedback-legend")).to_have_text("Wrong? It was…")
        expect(page.locator("#confidence-name")).to_have_text("confidence")
        read.append((label, int(page.locator("#digit").inner_text())))
        ids.append(answer["prediction_id"])
        assert stored_verdict(page, site, answer["prediction_id"]) is True
    assert sum(label == seen for label, seen in read) >= 4, read
    page.goto(site + "/history")
    for prediction_id in ids:
        row = history_row(page, prediction_id)
        expect(row).to_have_count(1)
        expect(row.locator(".badge.refused")).to_have_count(0)
