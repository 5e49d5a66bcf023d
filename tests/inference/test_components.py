"""Which strokes of a number belong to one digit (`digitlab.inference.components`): a 5
whose bar is written apart from its body is one digit; a dash beside a digit is not."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

from digitlab.inference.components import groups_of, label_components


def picture(bar: tuple[int, int, int, int]) -> np.ndarray:
    """Two digit-high bodies (a 1, and a 5's body: its stem and bowl) and a short stroke
    `bar` (x0, y0, x1, y1), as a mask 60 high."""
    canvas = Image.new("L", (140, 60), 0)
    draw = ImageDraw.Draw(canvas)
    draw.line([(20, 10), (20, 50)], 255, 4)  # the 1
    draw.line([(60, 10), (58, 28)], 255, 4)  # the 5's stem
    draw.arc([(52, 24), (84, 52)], 250, 170, 255, 4)  # and its bowl
    draw.line(bar[:2] + bar[2:], 255, 4)
    return np.asarray(canvas) > 127


def groups(mask: np.ndarray) -> list[tuple[int, int]]:
    """Each group's left and right column."""
    labels, count = label_components(mask)
    grouped, n = groups_of(labels, count)
    return [
        (int(cols.min()), int(cols.max()))
        for cols in (np.nonzero(grouped == k)[1] for k in range(1, n + 1))
    ]


def test_a_bar_beside_the_top_of_a_digit_is_part_of_it() -> None:
    """A 5's bar starting a few pixels right of its stem, over no other ink: one digit."""
    assert len(groups(picture((91, 10, 110, 10)))) == 2  # the 1, and the 5 with its bar


def test_a_dash_beside_a_digit_stays_apart() -> None:
    """The same stroke at mid-height is a dash, and one far to the right is no bar."""
    assert len(groups(picture((91, 31, 110, 31)))) == 3
    assert len(groups(picture((105, 10, 124, 10)))) == 3
