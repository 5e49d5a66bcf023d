"""Digits and numbers written with the mouse on the Recognise page: the real service with
Chromium on its page (`recognise_page`), the layout of a number from pen-path digits, and
the same strokes rendered to a PNG as the page paints them.

Not run by itself; bench/read_numbers.py and bench/robustness.py import it (their folder
is on sys.path).
"""

from __future__ import annotations

import io
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from digitlab.evaluation import penpaths

# The number pad as recognise.html and numbers.js make it: 840 x 280, an 18 px round pen
# (painted by pad.js).
PAD_WIDTH, PAD_HEIGHT, PEN = 840, 280, 18
CHROMIUM = "/usr/bin/chromium"
# Without the background-networking flags Chromium keeps dialling out of this closed network.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync"]  # fmt: skip


def number_strokes(labels: list[int], rng: np.random.Generator) -> penpaths.Strokes:
    """The digits `labels` side by side as a person writes them on the pad, in pad pixels:
    each a random way of writing it varied by `penpaths.vary` (slant, aspect, rotation,
    wobble), a little taller or shorter than the others and off the line, with uneven gaps;
    the digits shrunk when they would not fit."""
    height = rng.uniform(0.5, 0.75) * PAD_HEIGHT
    digits = []
    for label in labels:
        styles = penpaths.TEMPLATES[label]
        strokes = penpaths.vary(styles[int(rng.integers(len(styles)))], rng)
        points = np.concatenate(strokes)
        lo, hi = points.min(0), points.max(0)
        # By height only: a 1's width is near nothing.
        scale = height * rng.uniform(0.9, 1.1) / max(hi[1] - lo[1], 1e-6)
        digits.append([(s - lo) * scale for s in strokes])
    # Gaps between the pen's centre lines, in pad pixels and never shrunk: at least
    # PEN + 10, so the inks stay apart (touching digits are another matter).
    gaps = PEN + 10 + rng.uniform(0, 0.4, size=len(labels) - 1) * height
    widths = [max(float(np.concatenate(d)[:, 0].max()), 1.0) for d in digits]
    room = PAD_WIDTH - 2 * 2 * PEN
    shrink = min(1.0, (room - float(gaps.sum())) / sum(widths))
    x = 2 * PEN + rng.uniform(0, max(0.0, room - shrink * sum(widths) - float(gaps.sum())))
    out = []
    for k, digit in enumerate(digits):
        tall = float(np.concatenate(digit)[:, 1].max()) * shrink
        y = (PAD_HEIGHT - tall) / 2 + rng.normal(0, 0.03) * PAD_HEIGHT
        y = float(np.clip(y, PEN, PAD_HEIGHT - PEN - tall))
        out += [s * shrink + (x, y) for s in digit]
        x += widths[k] * shrink + (float(gaps[k]) if k < len(gaps) else 0.0)
    return out


def render_png(strokes: penpaths.Strokes, supersample: int = 4) -> bytes:
    """`strokes` (pad pixels) painted as pad.js paints them: black, PEN wide, round
    caps and joins, on white; drawn larger and reduced, for the canvas's antialiasing."""
    s = supersample
    page = Image.new("L", (PAD_WIDTH * s, PAD_HEIGHT * s), 255)
    pen = ImageDraw.Draw(page)
    r = PEN * s / 2
    for path in strokes:
        points = [(float(x) * s, float(y) * s) for x, y in path]
        pen.line(points, fill=0, width=PEN * s, joint="curve")
        for x, y in (points[0], points[-1]):  # round caps
            pen.ellipse((x - r, y - r, x + r, y + r), fill=0)
    out = io.BytesIO()
    page.resize((PAD_WIDTH, PAD_HEIGHT), Image.Resampling.BOX).save(out, format="PNG")
    return out.getvalue()


@contextmanager
def recognise_page(model_dir: Path) -> Iterator[Any]:
    """The real app (uvicorn in a thread) over a new SQLite database with the models in
    `model_dir`, and a headless Chromium (Debian's, never a download) on its Recognise
    page; yields the Playwright page."""
    import uvicorn
    from playwright.sync_api import sync_playwright

    from digitlab.app import create_app
    from digitlab.config import Settings
    from digitlab.store.testing_pg import free_port

    root = Path(tempfile.mkdtemp(prefix="digitlab-numbers-canvas-"))
    settings = Settings(model_dir=model_dir, database_url=f"sqlite:///{root / 'c.db'}",
                        report_dir=root / "reports", _env_file=None)  # type: ignore[call-arg]  # fmt: skip
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(settings), host="127.0.0.1", port=port,
                                           log_level="warning"))  # fmt: skip
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise SystemExit("the service did not start")
        time.sleep(0.05)
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            page.goto(f"http://127.0.0.1:{port}/")
            yield page
            browser.close()
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        shutil.rmtree(root, ignore_errors=True)


def draw_and_read(page: Any, strokes: penpaths.Strokes) -> tuple[str, str, float]:
    """Clear the pad, draw `strokes` (pad pixels) with the mouse, press Read the number:
    the text /api/v1/read answered, the text the page then shows, and the seconds from
    the press to the page showing it."""
    from playwright.sync_api import expect

    page.locator("#number-clear").click()
    unit = [p / (PAD_WIDTH, PAD_HEIGHT) for p in strokes]
    penpaths.draw(page, unit, pad="#number-pad")
    start = time.perf_counter()
    with page.expect_response(lambda r: r.url.endswith("/api/v1/read")) as answer:
        page.locator("#read-number").click()
    body = answer.value.json()
    status = page.locator("#number-status")
    # A locator assertion, not wait_for_function: the page's CSP refuses eval().
    expect(status).not_to_have_text("Reading…")
    seconds = time.perf_counter() - start
    shown = ""
    if page.locator("#number-result").is_visible():
        shown = page.locator("#number-text").inner_text()
    return str(body.get("text", "")), shown, seconds
