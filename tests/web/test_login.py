"""With DIGITLAB_VIEWER_TOKEN set, in a real browser: Recognise still works for anyone,
History sends a visitor to the sign-in page, which refuses a wrong token and lets the
right one through to the stored predictions."""

from __future__ import annotations

import base64
import io
import re

from PIL import Image
from playwright.sync_api import Page, expect

from digitlab.data import Split
from tests.web.conftest import VIEWER_TOKEN, screenshot
from tests.web.test_pages import trace_digit


def test_recognise_and_feedback_work_without_signing_in(
    guarded_site: str, page: Page, mnist_test: Split
) -> None:
    page.goto(guarded_site + "/")
    expect(page.get_by_role("link", name="Sign in")).to_be_visible()
    trace_digit(page, mnist_test.images[0])
    page.get_by_role("button", name="Recognise").click()
    expect(page.locator("#status")).to_contain_text("It looks like a")
    assert page.locator("#digit").inner_text() == str(mnist_test.labels[0])
    # What the model saw loads through the key in the answer, without a sign-in.
    expect(page.locator("#saw")).to_have_attribute("src", re.compile(r"image\.png\?key="))
    # A locator assertion, not wait_for_function: a string predicate is evaluated with
    # eval() in the page, which the page's Content-Security-Policy rightly refuses.
    expect(page.locator("#saw")).to_have_js_property("naturalWidth", 28)
    predicted = int(page.locator("#digit").inner_text())
    correction = (predicted + 1) % 10
    page.locator(f'#feedback-buttons button[data-label="{correction}"]').click()
    expect(page.locator("#status")).to_contain_text(f"recorded that it was a {correction}")

    page.get_by_role("link", name="History").click()
    expect(page).to_have_url(re.compile(r"/login\?next=%2Fhistory$"))


def test_history_needs_the_viewer_token(guarded_site: str, page: Page, mnist_test: Split) -> None:
    buffer = io.BytesIO()
    Image.fromarray(mnist_test.images[3]).save(buffer, format="PNG")
    image = base64.b64encode(buffer.getvalue()).decode()
    made = page.request.post(guarded_site + "/api/v1/predict", data={"image": image}).json()

    page.goto(guarded_site + "/history")
    expect(page).to_have_url(re.compile(r"/login\?next=%2Fhistory$"))
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    screenshot(page, "login")

    page.get_by_label("Viewer token", exact=True).fill("not-" + VIEWER_TOKEN)
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#login-error")).to_contain_text("not the viewer token")
    assert page.context.cookies() == []

    page.get_by_label("Viewer token", exact=True).fill(VIEWER_TOKEN)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(guarded_site + "/history")
    row = page.locator("table.history tbody tr").first
    expect(row.locator("td").first).to_have_text(str(made["prediction_id"]))
    expect(row.locator("td").nth(2)).to_have_text(str(made["prediction"]))
    expect(row.locator("img")).to_have_js_property("naturalWidth", 28)
    (cookie,) = page.context.cookies()
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    assert VIEWER_TOKEN not in cookie["value"]

    page.get_by_role("button", name="Sign out").click()
    page.goto(guarded_site + "/history")
    expect(page).to_have_url(re.compile(r"/login\?next=%2Fhistory$"))
