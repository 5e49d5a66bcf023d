"""Numbers benchmark: reading whole numbers (`digitlab.inference.numbers`) beside a baseline
that splits at empty columns, with the same model, in one run.

    python bench/read_numbers.py                       # the serving model, 200 numbers a layout
    python bench/read_numbers.py --count 50 --model-dir /tmp/models
    python bench/read_numbers.py --canvas 30        # also 30 numbers drawn in Chromium

Numbers of 2 to 6 digits are made from MNIST *test* digits in each layout of
`digitlab.evaluation.numberpics` (spaced, touching, overlapping, uneven gaps and sizes,
jitter, slope, dark on light) and sent as PNG files through the same code as the API.
Prints a Markdown table: exact-number accuracy and per-digit accuracy (1 - edit distance
/ length) per layout, for both readers, and the time per reading of 1 and of 6 digits.

With `--canvas N`, N numbers of 2 to 6 digits are also written with the mouse on the
Recognise page's number pad in Chromium (Playwright, Debian's /usr/bin/chromium), each
digit from pen strokes (`digitlab.evaluation.penpaths`), in front of the real service on
a new SQLite database, and read by its Read the number button; beside them, the same
strokes rendered to a PNG and read by `read_number` directly.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from digitlab.config import get_settings
from digitlab.data import load_split
from digitlab.evaluation.numberpics import LAYOUTS, compose, png_bytes
from digitlab.inference.numbers import ink_of, read_number
from digitlab.inference.predictor import Predictor
from digitlab.inference.preprocess import ImageError, normalise
from digitlab.scoring.numbers import digit_accuracy

CANVAS_COLUMNS = "| numbers | exact | per digit | ms per reading (median) | page = answer |"


def empty_columns(data: bytes, predictor: Predictor) -> str:
    """The baseline: cut at every column without ink, read each run of columns."""
    ink, _ = ink_of(data)
    inked = (ink >= 0.35 * 255).any(axis=0)
    edges = np.flatnonzero(np.diff(np.concatenate([[0], inked.astype(np.int8), [0]])))
    digits = [normalise(ink[:, a:b]) for a, b in zip(edges[0::2], edges[1::2], strict=True)]
    if not digits:
        return ""
    return "".join(str(k) for k in predictor.predict(np.stack(digits)).labels)


def read_text(data: bytes, predictor: Predictor) -> str:
    """The number `read_number` reads, "" where it refuses the picture (as the API's 422)."""
    try:
        return read_number(data, predictor.predict).text
    except ImageError:
        return ""


def score(got: str, truth: str) -> tuple[float, float]:
    """Exact (0 or 1) and per digit (1 - edit distance / length, at least 0)."""
    return float(got == truth), digit_accuracy(got, truth)


def canvas(count: int, seed: int, model_dir: Path, predictor: Predictor) -> None:
    """`count` numbers written with the mouse in Chromium and read by the page, beside the
    same strokes rendered to a PNG and read by `read_number` here."""
    from canvas_draw import draw_and_read, number_strokes, recognise_page, render_png

    # Its own generator: the layouts' numbers stay the same with or without --canvas.
    rng = np.random.default_rng([seed, 31])
    numbers = []
    for _ in range(count):
        labels = [int(d) for d in rng.integers(0, 10, size=int(rng.integers(2, 7)))]
        numbers.append(("".join(map(str, labels)), number_strokes(labels, rng)))
    page_sums, direct_sums = np.zeros(2), np.zeros(2)
    page_times, direct_times, agree, misread = [], [], 0, []
    with recognise_page(model_dir) as page:
        for truth, strokes in numbers:
            answered, shown, seconds = draw_and_read(page, strokes)
            page_sums += score(shown, truth)
            page_times.append(seconds)
            agree += shown == answered
            data = render_png(strokes)
            t0 = time.perf_counter()
            text = read_text(data, predictor)
            direct_times.append(time.perf_counter() - t0)
            direct_sums += score(text, truth)
            if truth not in (shown, text):
                misread.append(f"{truth}: {shown or '-'} / {text or '-'}")
    print(f"\n{count} numbers of 2 to 6 digits, pen strokes (seed {seed})\n")
    print(CANVAS_COLUMNS + "\n|---|---|---|---|---|")
    for name, sums, times, same in (
        ("drawn with the mouse in Chromium", page_sums, page_times, f"{agree}/{count}"),
        ("same strokes as a PNG, read_number", direct_sums, direct_times, "-"),
    ):
        exact, digits = 100 * sums / count
        ms = 1000 * float(np.median(times))
        print(f"| {name} | {exact:.1f}% | {digits:.1f}% | {ms:.1f} | {same} |")
    print(f"\nmisread (number: page / PNG): {', '.join(misread) or 'none'}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=200, help="numbers per layout")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--model-dir", type=Path, default=None)
    parser.add_argument("--layouts", default="", help="comma-separated layout names")
    parser.add_argument("--canvas", type=int, default=0, help="numbers drawn in Chromium")
    args = parser.parse_args()
    settings = get_settings()
    predictor = Predictor(args.model_dir or settings.model_dir)
    test = load_split("mnist", "test", settings)
    rng = np.random.default_rng(args.seed)
    print(f"{datetime.now(UTC):%Y-%m-%d}, {platform.processor() or platform.machine()}, "
          f"model {predictor.model.version}, {args.count} numbers a layout: "
          f"python {' '.join(sys.argv)}")  # fmt: skip
    print("\n| layout | exact (numbers) | per digit | exact (empty columns) | per digit |")
    print("|---|---|---|---|---|")
    totals = np.zeros(4)
    chosen = [x for x in LAYOUTS if not args.layouts or x.name in args.layouts.split(",")]
    for layout in chosen:
        sums = np.zeros(4)
        for _ in range(args.count):
            picks = rng.choice(len(test.labels), size=int(rng.integers(2, 7)), replace=False)
            truth = "".join(str(int(test.labels[k])) for k in picks)
            data = png_bytes(compose([test.images[k] for k in picks], layout, rng))
            text = read_text(data, predictor)
            base = empty_columns(data, predictor)
            sums += (*score(text, truth), *score(base, truth))
        sums /= args.count
        totals += sums / len(chosen)
        print(f"| {layout.name} | " + " | ".join(f"{100 * v:.1f}%" for v in sums) + " |")
    print("| **mean** | " + " | ".join(f"**{100 * v:.1f}%**" for v in totals) + " |")
    # 1 and 6 digits taken in turn, so both see the same load on a busy machine.
    sizes = (1, 6)
    pictures = [png_bytes(compose(list(test.images[:n]), LAYOUTS[0], rng)) for n in sizes]
    times: list[list[float]] = [[] for _ in sizes]
    for _ in range(200):
        for picture, own in zip(pictures, times, strict=True):
            t0 = time.perf_counter()
            read_number(picture, predictor.predict)
            own.append(time.perf_counter() - t0)
    ms = [1000 * float(np.median(own)) for own in times]
    print("\n| digits | ms per reading (median of 200, taken in turn) |\n|---|---|")
    for size, value in zip(sizes, ms, strict=True):
        print(f"| {size} | {value:.2f} |")
    print(f"\n6 digits take {ms[1] / ms[0]:.2f}x the time of 1.")
    if args.canvas:
        canvas(args.canvas, args.seed, args.model_dir or settings.model_dir, predictor)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
