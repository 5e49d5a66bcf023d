"""Digits as pen strokes, for drawing them on the web page's canvas the way a person
does with a mouse: each digit is one or more polylines in a unit square (x right, y
down), in a few common ways of writing it, varied per sample by slant, size, aspect,
position and a wobble of the hand.

These are test inputs only (the robustness benchmark and the browser tests draw them);
nothing trains on them. Pure numpy.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

Path = npt.NDArray[np.float64]  # (points, 2): x, y in the unit square
Strokes = list[Path]


def arc(cx: float, cy: float, rx: float, ry: float, start: float, stop: float) -> Path:
    """An elliptic arc from `start` to `stop` degrees (0 = right, 90 = down)."""
    t = np.radians(np.linspace(start, stop, max(8, int(abs(stop - start) / 12))))
    return np.stack([cx + rx * np.cos(t), cy + ry * np.sin(t)], 1)


def line(*points: tuple[float, float]) -> Path:
    return np.array(points, dtype=np.float64)


def join(*parts: Path) -> Path:
    return np.concatenate(parts)


# Each digit: its ways of being written, each a list of strokes.
TEMPLATES: dict[int, list[Strokes]] = {
    0: [[arc(0.5, 0.5, 0.3, 0.42, -90, 270)], [arc(0.5, 0.5, 0.22, 0.42, -100, 265)]],
    1: [
        [line((0.52, 0.08), (0.5, 0.92))],
        [line((0.4, 0.2), (0.55, 0.08), (0.55, 0.92))],
        [line((0.35, 0.22), (0.55, 0.08), (0.55, 0.92)), line((0.35, 0.92), (0.75, 0.92))],
    ],
    2: [
        [join(arc(0.5, 0.3, 0.27, 0.22, 190, 390), line((0.74, 0.42), (0.22, 0.92), (0.8, 0.92)))],
        [join(arc(0.48, 0.3, 0.26, 0.22, 200, 380), line((0.72, 0.4), (0.25, 0.9), (0.8, 0.88)))],
    ],
    3: [
        [join(arc(0.48, 0.29, 0.25, 0.21, 200, 450), arc(0.48, 0.71, 0.28, 0.21, -90, 160))],
        [join(line((0.25, 0.1), (0.75, 0.1), (0.45, 0.45)), arc(0.47, 0.7, 0.28, 0.23, -80, 165))],
    ],
    4: [
        [line((0.6, 0.08), (0.18, 0.65), (0.82, 0.65)), line((0.64, 0.35), (0.64, 0.92))],
        [line((0.28, 0.08), (0.22, 0.55), (0.8, 0.55)), line((0.7, 0.1), (0.68, 0.92))],
    ],
    5: [
        [line((0.75, 0.1), (0.32, 0.1), (0.28, 0.45)), arc(0.48, 0.66, 0.28, 0.26, -130, 160)],
        [
            join(
                line((0.75, 0.1), (0.32, 0.1), (0.28, 0.45)), arc(0.48, 0.66, 0.28, 0.26, -130, 160)
            )
        ],
    ],
    6: [
        [join(arc(0.6, 0.45, 0.35, 0.4, 260, 180), arc(0.5, 0.7, 0.24, 0.2, 180, 540))],
        [join(line((0.65, 0.08), (0.3, 0.55)), arc(0.5, 0.7, 0.23, 0.21, 210, 570))],
    ],
    7: [
        [line((0.2, 0.1), (0.8, 0.1), (0.42, 0.92))],
        [line((0.2, 0.1), (0.8, 0.1), (0.45, 0.92)), line((0.38, 0.5), (0.75, 0.5))],
    ],
    8: [
        [join(arc(0.5, 0.28, 0.22, 0.2, 90, 450), arc(0.5, 0.7, 0.27, 0.22, -90, 270))],
        [arc(0.5, 0.28, 0.2, 0.19, 0, 360), arc(0.5, 0.7, 0.26, 0.22, -90, 270)],
    ],
    9: [
        [join(arc(0.48, 0.32, 0.24, 0.22, 0, 360), line((0.72, 0.32), (0.68, 0.92)))],
        [join(arc(0.5, 0.3, 0.24, 0.21, -10, 350), arc(0.2, 0.3, 0.54, 0.62, 0, 80))],
    ],
}


def vary(strokes: Strokes, rng: np.random.Generator) -> Strokes:
    """One person's rendering: slanted (up to 15 degrees), a narrower or wider hand,
    a little rotated, smaller or larger, anywhere on the pad, with a wobble."""
    slant = np.tan(np.radians(rng.uniform(-15, 15)))
    angle = np.radians(rng.uniform(-8, 8))
    aspect = rng.uniform(0.75, 1.2)
    size = rng.uniform(0.45, 0.85)
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    out = []
    for path in strokes:
        p = path - 0.5
        p = np.stack([p[:, 0] * aspect - slant * p[:, 1], p[:, 1]], 1) @ rot.T
        p = p + rng.normal(0, 0.008, p.shape)  # the hand's wobble
        out.append(p * size)
    lo = min(float(p.min()) for p in out)
    hi = max(float(p.max()) for p in out)
    room = max(0.0, 1 - (hi - lo) - 0.08)
    offset = 0.04 - lo + rng.uniform(0, room, size=2)
    return [np.clip(p + offset, 0.01, 0.99) for p in out]


def sample(count: int, seed: int = 0) -> list[tuple[int, Strokes]]:
    """`count` digits (labels cycling 0-9), each a random way of writing it, varied."""
    rng = np.random.default_rng(seed)
    digits = []
    for i in range(count):
        label = i % 10
        styles = TEMPLATES[label]
        digits.append((label, vary(styles[int(rng.integers(len(styles)))], rng)))
    return digits


def draw(page: Any, strokes: Strokes, pad: str = "#pad") -> None:
    """Draw `strokes` on the canvas `pad` of a Playwright `page` with the mouse: press,
    move through each point, release, a stroke at a time."""
    box = page.locator(pad).bounding_box()
    for path in strokes:
        points = [(box["x"] + x * box["width"], box["y"] + y * box["height"]) for x, y in path]
        page.mouse.move(*points[0])
        page.mouse.down()
        for point in points[1:]:
            page.mouse.move(*point, steps=2)
        page.mouse.up()
