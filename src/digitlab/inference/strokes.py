"""Pen width: measured on a digit scaled to MNIST's 20x20 box, and brought back into
MNIST's range when it is far outside it (a thin mouse stroke, a fine pen on a large
canvas, a thick marker, a bold low-resolution scan).

MNIST's strokes, measured the same way, are 2.0 px wide at the median and 1.3 to 3.1 px
for 90% of the training digits; a digit inside that range is left exactly as it is.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from PIL import Image, ImageFilter

Gray = npt.NDArray[np.float32]

# MNIST's 5th and 95th percentiles (`stroke_width` over the 60,000 training digits).
THINNEST = 1.3
THICKEST = 3.1
# Where a digit outside the range is brought: inside it, on the side it came from.
THIN_TARGET = 1.8
THICK_TARGET = 2.6
# The pen is changed at this many times the box's resolution: steps of a quarter pixel.
OVERSAMPLE = 4


def stroke_width(digit: Gray) -> float:
    """Mean stroke width in pixels: twice the ink's area over its outline's length
    (a stroke of width w and length L has area wL and an outline of about 2L), with ink
    as the pixels at half the strongest or more."""
    top = float(digit.max())
    if top <= 0:
        return 0.0
    ink = digit >= 0.5 * top
    padded = np.pad(ink, 1)
    outline = int(np.count_nonzero(padded[1:] != padded[:-1])) + int(
        np.count_nonzero(padded[:, 1:] != padded[:, :-1])
    )
    return 2.0 * float(np.count_nonzero(ink)) / max(outline, 1)


def change_pen(crop: Gray, box_width: float, box_scale: float) -> Gray | None:
    """The ink crop with its strokes made `box_width` px (at box scale) thinner or
    thicker towards MNIST's range, recropped; None when the width is already inside it.
    `box_scale`: box pixels per crop pixel."""
    if THINNEST <= box_width <= THICKEST:
        return None
    target = THIN_TARGET if box_width < THINNEST else THICK_TARGET
    # Work where one pixel is a quarter of a box pixel, so the radius has fine steps.
    work_scale = OVERSAMPLE * box_scale
    height, width = crop.shape
    size = (max(1, round(width * work_scale)), max(1, round(height * work_scale)))
    resample = Image.Resampling.BOX if work_scale < 1 else Image.Resampling.BICUBIC
    work = Image.fromarray(crop).resize(size, resample)
    # Dilation widens a stroke by 2r, erosion narrows it by 2r.
    radius = round(abs(target - box_width) * OVERSAMPLE / 2)
    if radius == 0:
        return None
    pen = ImageFilter.MaxFilter if target > box_width else ImageFilter.MinFilter
    changed = np.asarray(work.filter(pen(2 * radius + 1)), np.float32)
    rows, cols = np.nonzero(changed >= 0.2 * max(float(changed.max()), 1e-6))
    if not len(rows):  # eroded away entirely: keep the pen as it was
        return None
    return changed[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]
