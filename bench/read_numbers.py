"""Numbers benchmark: reading whole numbers (`digitlab.inference.numbers`) beside a baseline
that splits at empty columns, with the same model, in one run.

    python bench/read_numbers.py                       # the serving model, 200 numbers a layout
    python bench/read_numbers.py --count 50 --model-dir /tmp/models

Numbers of 2 to 6 digits are made from MNIST *test* digits in each layout of
`digitlab.evaluation.numberpics` (spaced, touching, overlapping, uneven gaps and sizes,
jitter, slope, dark on light) and sent as PNG files through the same code as the API.
Prints a Markdown table: exact-number accuracy and per-digit accuracy (1 - edit distance
/ length) per layout, for both readers, and the time per reading of 1 and of 6 digits.
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


def edit_distance(a: str, b: str) -> int:
    row = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        prev, row[0] = row[0], i
        for j, cb in enumerate(b, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (ca != cb))
    return row[-1]


def empty_columns(data: bytes, predictor: Predictor) -> str:
    """The baseline: cut at every column without ink, read each run of columns."""
    ink, _ = ink_of(data)
    inked = (ink >= 0.35 * 255).any(axis=0)
    edges = np.flatnonzero(np.diff(np.concatenate([[0], inked.astype(np.int8), [0]])))
    digits = [normalise(ink[:, a:b]) for a, b in zip(edges[0::2], edges[1::2], strict=True)]
    if not digits:
        return ""
    return "".join(str(k) for k in predictor.predict(np.stack(digits)).labels)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=200, help="numbers per layout")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--model-dir", type=Path, default=None)
    parser.add_argument("--layouts", default="", help="comma-separated layout names")
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
            try:
                text = read_number(data, predictor.predict).text
            except ImageError:
                text = ""
            base = empty_columns(data, predictor)
            for spot, got in ((0, text), (2, base)):
                sums[spot] += got == truth
                sums[spot + 1] += max(0.0, 1 - edit_distance(got, truth) / len(truth))
        sums /= args.count
        totals += sums / len(chosen)
        print(f"| {layout.name} | " + " | ".join(f"{100 * v:.1f}%" for v in sums) + " |")
    print("| **mean** | " + " | ".join(f"**{100 * v:.1f}%**" for v in totals) + " |")
    print("\n| digits | ms per reading (median of 30) |\n|---|---|")
    for size in (1, 6):
        data = png_bytes(compose([test.images[k] for k in range(size)], LAYOUTS[0], rng))
        times = []
        for _ in range(30):
            t0 = time.perf_counter()
            read_number(data, predictor.predict)
            times.append(time.perf_counter() - t0)
        print(f"| {size} | {1000 * float(np.median(times)):.2f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
