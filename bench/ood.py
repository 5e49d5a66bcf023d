"""Not-a-digit benchmark: how often the served model's verdict (`is_digit`) refuses
pictures that are no digit, and how often it wrongly refuses real digits, beside a
baseline in the same run: the maximum softmax at 0.5 on the same model, and (with
`--baseline VERSION`) on another version, e.g. a ten-output `plain` model.

    python bench/ood.py                          # the serving version
    python bench/ood.py --baseline VERSION       # ... and another version's max softmax
    python bench/ood.py --count 200 --digits 100 # quicker

The non-digits are of this script's own making and are NOT what training's negatives are
(digitlab.ml.negatives): Fashion-MNIST's *test* split (training sees its train split only),
letters drawn from pen strokes here (no font; nothing trains on letters), scribbles from
other generators (zigzags, loops, spirals, hatching, stars), blank paper and noise at
sizes and kinds of their own, all from a seed training does not use. The digits: the
MNIST test set, digits drawn from pen strokes (`digitlab.evaluation.penpaths`), and every
shift of `digitlab.evaluation.shifts` (bench/robustness.py's) at each strength. Every
picture but MNIST's own goes through the service's preprocessing as an uploaded PNG.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime

import numpy as np
import numpy.typing as npt
from PIL import Image, ImageDraw

from digitlab.config import get_settings
from digitlab.data import load_split
from digitlab.evaluation import penpaths
from digitlab.evaluation.penpaths import arc, join, line
from digitlab.evaluation.shifts import SHIFTS, png, shifted
from digitlab.inference.preprocess import image_to_digit, model_input
from digitlab.inference.runtime import OnnxClassifier
from digitlab.inference.verdict import split_outputs, verdict_threshold
from digitlab.registry import versions as registry

Digits = npt.NDArray[np.uint8]
Strokes = penpaths.Strokes

# Letters as a person writes them, in the unit square (x right, y down); evaluation only.
LETTERS: dict[str, Strokes] = {
    "A": [line((0.15, 0.92), (0.5, 0.08), (0.85, 0.92)), line((0.3, 0.6), (0.7, 0.6))],
    "B": [
        line((0.25, 0.08), (0.25, 0.92)),
        join(line((0.25, 0.08), (0.5, 0.08)), arc(0.5, 0.29, 0.22, 0.21, -90, 90)),
        join(
            line((0.25, 0.5), (0.52, 0.5)),
            arc(0.52, 0.71, 0.26, 0.21, -90, 90),
            line((0.52, 0.92), (0.25, 0.92)),
        ),
    ],
    "C": [arc(0.55, 0.5, 0.35, 0.42, -45, -315)],
    "D": [
        line((0.25, 0.08), (0.25, 0.92)),
        join(
            line((0.25, 0.08), (0.42, 0.08)),
            arc(0.42, 0.5, 0.36, 0.42, -90, 90),
            line((0.42, 0.92), (0.25, 0.92)),
        ),
    ],
    "E": [
        line((0.75, 0.08), (0.25, 0.08), (0.25, 0.92), (0.75, 0.92)),
        line((0.25, 0.5), (0.65, 0.5)),
    ],
    "F": [line((0.75, 0.08), (0.25, 0.08), (0.25, 0.92)), line((0.25, 0.48), (0.65, 0.48))],
    "G": [
        join(arc(0.5, 0.5, 0.35, 0.42, -60, -340), line((0.83, 0.64), (0.83, 0.52), (0.56, 0.52)))
    ],
    "H": [
        line((0.22, 0.08), (0.22, 0.92)),
        line((0.78, 0.08), (0.78, 0.92)),
        line((0.22, 0.5), (0.78, 0.5)),
    ],
    "J": [
        join(line((0.35, 0.08), (0.85, 0.08))),
        join(line((0.68, 0.08), (0.68, 0.7)), arc(0.46, 0.7, 0.22, 0.22, 0, 180)),
    ],
    "K": [line((0.25, 0.08), (0.25, 0.92)), line((0.75, 0.08), (0.27, 0.55), (0.78, 0.92))],
    "M": [line((0.12, 0.92), (0.2, 0.08), (0.5, 0.6), (0.8, 0.08), (0.88, 0.92))],
    "N": [line((0.2, 0.92), (0.2, 0.08), (0.8, 0.92), (0.8, 0.08))],
    "P": [
        line((0.28, 0.92), (0.28, 0.08)),
        join(
            line((0.28, 0.08), (0.5, 0.08)),
            arc(0.5, 0.3, 0.25, 0.22, -90, 90),
            line((0.5, 0.52), (0.28, 0.52)),
        ),
    ],
    "Q": [arc(0.5, 0.48, 0.32, 0.4, 0, 360), line((0.55, 0.7), (0.85, 0.95))],
    "R": [
        line((0.28, 0.92), (0.28, 0.08)),
        join(
            line((0.28, 0.08), (0.5, 0.08)),
            arc(0.5, 0.3, 0.25, 0.22, -90, 90),
            line((0.5, 0.52), (0.28, 0.52)),
        ),
        line((0.45, 0.52), (0.8, 0.92)),
    ],
    "S": [join(arc(0.5, 0.3, 0.28, 0.21, -30, -270), arc(0.5, 0.71, 0.28, 0.2, 270, 510))],
    "T": [line((0.15, 0.1), (0.85, 0.1)), line((0.5, 0.1), (0.5, 0.92))],
    "U": [
        join(
            line((0.2, 0.08), (0.2, 0.6)),
            arc(0.5, 0.6, 0.3, 0.32, 180, 0),
            line((0.8, 0.6), (0.8, 0.08)),
        )
    ],
    "V": [line((0.15, 0.08), (0.5, 0.92), (0.85, 0.08))],
    "W": [line((0.08, 0.08), (0.28, 0.92), (0.5, 0.35), (0.72, 0.92), (0.92, 0.08))],
    "X": [line((0.15, 0.08), (0.85, 0.92)), line((0.85, 0.08), (0.15, 0.92))],
    "Y": [line((0.15, 0.08), (0.5, 0.5), (0.85, 0.08)), line((0.5, 0.5), (0.5, 0.92))],
    "Z": [line((0.15, 0.1), (0.85, 0.1), (0.15, 0.9), (0.85, 0.9))],
    "a": [arc(0.45, 0.62, 0.25, 0.28, 0, 360), line((0.7, 0.34), (0.72, 0.92))],
    "e": [join(line((0.22, 0.58), (0.78, 0.58)), arc(0.5, 0.6, 0.28, 0.32, 0, -320))],
    "h": [
        line((0.25, 0.08), (0.25, 0.92)),
        join(arc(0.5, 0.62, 0.25, 0.22, 180, 360), line((0.75, 0.62), (0.75, 0.92))),
    ],
    "k": [line((0.28, 0.08), (0.28, 0.92)), line((0.7, 0.4), (0.3, 0.68), (0.72, 0.92))],
    "m": [
        line((0.1, 0.4), (0.1, 0.92)),
        join(arc(0.3, 0.55, 0.2, 0.15, 180, 360), line((0.5, 0.55), (0.5, 0.92))),
        join(arc(0.7, 0.55, 0.2, 0.15, 180, 360), line((0.9, 0.55), (0.9, 0.92))),
    ],
    "n": [
        line((0.25, 0.35), (0.25, 0.92)),
        join(arc(0.5, 0.6, 0.25, 0.22, 180, 360), line((0.75, 0.6), (0.75, 0.92))),
    ],
    "r": [line((0.32, 0.35), (0.32, 0.92)), arc(0.55, 0.58, 0.23, 0.18, 180, 300)],
    "t": [line((0.45, 0.08), (0.45, 0.8), (0.6, 0.92)), line((0.2, 0.35), (0.72, 0.35))],
    "w": [line((0.08, 0.35), (0.28, 0.92), (0.5, 0.5), (0.72, 0.92), (0.92, 0.35))],
    "x": [line((0.2, 0.35), (0.8, 0.92)), line((0.8, 0.35), (0.2, 0.92))],
    "y": [line((0.2, 0.3), (0.5, 0.65)), line((0.8, 0.3), (0.3, 0.95))],
}


def render(strokes: Strokes, rng: np.random.Generator, side: int = 140) -> bytes:
    """Strokes as a PNG of dark ink on white paper, with a pen of random width."""
    page = Image.new("L", (side, side), 255)
    pen = ImageDraw.Draw(page)
    width = int(rng.integers(6, 15)) * side // 140
    for path in strokes:
        pen.line(
            [(float(x) * side, float(y) * side) for x, y in path],
            fill=0,
            width=width,
            joint="curve",
        )
    return png(np.asarray(page, np.uint8))


def letters(count: int, rng: np.random.Generator) -> Digits:
    names = sorted(LETTERS)
    return np.stack(
        [
            image_to_digit(render(penpaths.vary(LETTERS[names[i % len(names)]], rng), rng))
            for i in range(count)
        ]
    )


def held_out_scribble(rng: np.random.Generator) -> Strokes:
    """Zigzags, cursive loops, a spiral, hatching or a star: none is training's random walk."""
    kind = int(rng.integers(5))
    if kind == 0:  # a zigzag across the pad
        n = int(rng.integers(4, 9))
        xs = np.linspace(0.1, 0.9, n)
        ys = np.where(np.arange(n) % 2 == 0, rng.uniform(0.1, 0.4, n), rng.uniform(0.6, 0.9, n))
        return [np.stack([xs, ys], 1)]
    if kind == 1:  # loops, as in "eeee"
        t = np.linspace(0, 2 * np.pi * rng.integers(3, 6), 200)
        r = rng.uniform(0.08, 0.15)
        xs = 0.1 + t / t[-1] * 0.7 + r * np.cos(t)
        return [np.stack([xs, 0.5 + r * 1.5 * np.sin(t)], 1)]
    if kind == 2:  # a spiral
        t = np.linspace(0, 2 * np.pi * rng.uniform(2, 4), 200)
        r = 0.05 + 0.4 * t / t[-1]
        return [np.stack([0.5 + r * np.cos(t), 0.5 + r * np.sin(t)], 1)]
    if kind == 3:  # hatching
        n = int(rng.integers(3, 7))
        ys = np.linspace(0.15, 0.85, n)
        tilt = rng.uniform(-0.2, 0.2)
        return [line((0.1, y), (0.9, y + tilt)) for y in ys]
    angles = np.sort(rng.uniform(0, 2 * np.pi, int(rng.integers(5, 9))))  # a star
    radii = rng.uniform(0.1, 0.45, len(angles))
    pts = np.stack([0.5 + radii * np.cos(angles), 0.5 + radii * np.sin(angles)], 1)
    return [np.concatenate([pts, pts[:1]])]


def scribbles(count: int, rng: np.random.Generator) -> Digits:
    return np.stack(
        [
            image_to_digit(render(penpaths.vary(held_out_scribble(rng), rng), rng))
            for _ in range(count)
        ]
    )


def blank_paper(count: int, rng: np.random.Generator) -> Digits:
    out = []
    for _ in range(count):
        side = int(rng.choice([28, 64, 200, 400]))
        shade = np.linspace(0, rng.uniform(-40, 40), side)[:, None]
        page = rng.uniform(170, 255) + shade + rng.normal(0, rng.uniform(0, 8), (side, side))
        out.append(image_to_digit(png(np.clip(page, 0, 255).astype(np.uint8))))
    return np.stack(out)


def pure_noise(count: int, rng: np.random.Generator) -> Digits:
    out = []
    for i in range(count):
        side = int(rng.choice([28, 56, 128, 256]))
        if i % 2:
            page = rng.normal(rng.uniform(80, 180), rng.uniform(30, 100), (side, side))
        else:
            page = rng.uniform(0, 255, (side, side))
        out.append(image_to_digit(png(np.clip(page, 0, 255).astype(np.uint8))))
    return np.stack(out)


def fashion_test(count: int, rng: np.random.Generator) -> Digits:
    """Fashion-MNIST test photos, half of them as dark items on light paper."""
    images = load_split("fashion-mnist", "test", get_settings()).images
    picks = images[rng.choice(len(images), count, replace=False)]
    return np.stack([image_to_digit(png(255 - p if i % 2 else p)) for i, p in enumerate(picks)])


def canvas_digits(count: int, seed: int) -> Digits:
    rng = np.random.default_rng(seed)
    return np.stack([image_to_digit(render(s, rng)) for _, s in penpaths.sample(count, seed)])


class Judge:
    """Refusals of one model: by its verdict, and by the maximum softmax at 0.5."""

    def __init__(self, model: registry.ModelVersion, threshold: float | None = None) -> None:
        self.classifier = OnnxClassifier(model, threads=2)
        self.threshold = verdict_threshold(model, threshold)

    def refused(self, digits: Digits, others: tuple[float, ...] = ()) -> list[float]:
        """Shares refused: by the verdict, by the maximum softmax at 0.5, and by the
        verdict's score at each of `others`."""
        probs, scores = split_outputs(self.classifier.logits(model_input(digits)))
        cuts = [float((scores < self.threshold).mean()), float((probs.max(1) < 0.5).mean())]
        return cuts + [float((scores < t).mean()) for t in others]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--version", help="the model to judge (default: the serving one)")
    parser.add_argument("--baseline", help="another version, judged by max softmax at 0.5")
    parser.add_argument("--count", type=int, default=500, help="pictures per non-digit set")
    parser.add_argument("--digits", type=int, default=300, help="digits per shift and strength")
    parser.add_argument("--seed", type=int, default=12345, help="for the sets made here")
    parser.add_argument(
        "--thresholds", default="", help="comma-separated digit-score thresholds to try too"
    )
    args = parser.parse_args()
    settings = get_settings()
    if args.version:
        model = registry.load_version(settings.model_dir, args.version)
    else:
        model = registry.resolve(settings.model_dir)
    judge = Judge(model)
    other = (
        Judge(registry.load_version(settings.model_dir, args.baseline)) if args.baseline else None
    )
    rng = np.random.default_rng(args.seed)
    t0 = time.perf_counter()
    mnist = load_split("mnist", "test", settings)
    makers: list[tuple[str, Callable[[], Digits]]] = [
        ("letters (drawn, no font)", lambda: letters(args.count, rng)),
        ("Fashion-MNIST test", lambda: fashion_test(args.count, rng)),
        ("scribbles (held-out kinds)", lambda: scribbles(args.count, rng)),
        ("blank paper", lambda: blank_paper(args.count, rng)),
        ("noise", lambda: pure_noise(args.count, rng)),
    ]
    rows: list[tuple[str, str, Digits]] = [("not a digit", n, make()) for n, make in makers]
    rows.append(("digit", "MNIST test (all)", mnist.images))
    rows.append(("digit", "drawn from pen strokes", canvas_digits(args.count, args.seed)))
    sample = mnist.images[: args.digits]
    for shift in SHIFTS.values():
        for strength in shift.strengths:
            if strength:
                name = f"{shift.name} {strength:g} {shift.unit}"
                rows.append(("digit", name, shifted(sample, shift, strength, seed=args.seed)))
    made = time.perf_counter() - t0

    print(f"# Not-a-digit verdict, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")
    print(
        f"machine: {platform.machine()}, {platform.processor() or platform.platform()}; "
        f"command: python {' '.join(sys.argv)}"
    )
    print(f"model: {model.version} (threshold {judge.threshold:.4f}); sets made in {made:.0f} s")
    others = tuple(float(t) for t in args.thresholds.split(",") if t)
    head = "| kind | set | n | refused: verdict | refused: max softmax < 0.5 (same model) |"
    rule = "|---|---|---:|---:|---:|"
    for t in others:
        head += f" score < {t:g} |"
        rule += "---:|"
    if other:
        head += f" refused: max softmax < 0.5 ({other.classifier.model.version}) |"
        rule += "---:|"
    print("\n" + head + "\n" + rule)
    for kind, name, digits in rows:
        shares = judge.refused(digits, others)
        cells = f"| {kind} | {name} | {len(digits)} | " + " | ".join(f"{x:.1%}" for x in shares)
        cells += " |"
        if other:
            cells += f" {other.refused(digits)[1]:.1%} |"
        print(cells)
    print("\nFor non-digits a higher share refused is better; for digits, lower.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
