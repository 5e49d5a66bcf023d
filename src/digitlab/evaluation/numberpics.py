"""Pictures of whole numbers made from single MNIST digits, laid out as people write them:
spaced, touching, overlapping a little, uneven gaps and sizes, jittered, sloping, dark on
light as well as light on dark, and scanned at low resolution (8 or 12 pixels a digit).
Used by `bench/read_numbers.py` and the tests.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from PIL import Image

Picture = npt.NDArray[np.uint8]  # (H, W), 0..255


@dataclass(frozen=True)
class Layout:
    name: str
    gap: tuple[int, int] = (3, 8)  # pixels between ink boxes at scale 1, drawn per gap
    sizes: tuple[float, float] = (1.0, 1.0)  # each digit's scale, drawn per digit
    jitter: int = 0  # vertical offset, drawn per digit, at scale 1
    slope: float = 0.0  # vertical drift per horizontal pixel
    dark_on_light: bool = False
    # >0: the finished picture is scanned at this many pixels per digit's height (area
    # averaging), as a low-resolution scan of a written number is.
    scan_height: int = 0


LAYOUTS = (
    Layout("spaced"),
    Layout("touching", gap=(-2, 0)),
    Layout("overlapping", gap=(-4, -2)),
    Layout("uneven gaps", gap=(1, 24)),
    Layout("uneven sizes", sizes=(0.7, 1.25)),
    Layout("jitter", jitter=4),
    Layout("slope", slope=0.12),
    Layout("dark on light", gap=(-1, 8), jitter=2, dark_on_light=True),
    Layout("low-resolution scan", gap=(2, 8), scan_height=12),
    Layout("tiny scan", gap=(3, 8), scan_height=8),
)


def ink_crop(digit: Picture) -> Picture:
    rows, cols = np.nonzero(digit > 0)
    return digit[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]


def compose(
    digits: list[Picture], layout: Layout, rng: np.random.Generator, scale: int = 2
) -> Picture:
    """One picture of the digits side by side (light ink on black, or inverted)."""
    return compose_spans(digits, layout, rng, scale)[0]


def compose_spans(
    digits: list[Picture], layout: Layout, rng: np.random.Generator, scale: int = 2
) -> tuple[Picture, list[tuple[float, float]]]:
    """`compose`, and where each digit's ink lies across the picture: (left, right) in
    its pixels, for fitting the reader to the true digits (bench/fit_reader.py)."""
    parts = []
    for digit in digits:
        part = ink_crop(digit)
        size = rng.uniform(*layout.sizes) * scale
        shape = (max(1, round(part.shape[1] * size)), max(1, round(part.shape[0] * size)))
        parts.append(np.asarray(Image.fromarray(part).resize(shape, Image.Resampling.BILINEAR)))
    tallest = max(p.shape[0] for p in parts)
    margin = 12 * scale
    spots = []
    x = margin
    for k, part in enumerate(parts):
        if k:
            x += round(rng.integers(layout.gap[0], layout.gap[1] + 1) * scale)
        x = max(x, margin)
        bottom = margin + tallest + round(layout.slope * (x - margin))  # a baseline
        y = bottom - part.shape[0] + round(rng.integers(-layout.jitter, layout.jitter + 1) * scale)
        spots.append((x, max(0, y)))
        x += part.shape[1]
    width = x + margin
    height = max(y + p.shape[0] for (_, y), p in zip(spots, parts, strict=True)) + margin
    field = np.zeros((height, width), np.uint8)
    for (x, y), part in zip(spots, parts, strict=True):
        window = field[y : y + part.shape[0], x : x + part.shape[1]]
        np.maximum(window, part, out=window)
    spans = [
        (float(x), float(x + part.shape[1])) for (x, _), part in zip(spots, parts, strict=True)
    ]
    if layout.scan_height:
        factor = layout.scan_height / tallest
        scanned = (max(1, round(width * factor)), max(1, round(height * factor)))
        field = np.asarray(Image.fromarray(field).resize(scanned, Image.Resampling.BOX))
        spans = [(left * factor, right * factor) for left, right in spans]
    return (255 - field if layout.dark_on_light else field), spans


def png_bytes(picture: Picture) -> bytes:
    import io

    buffer = io.BytesIO()
    Image.fromarray(picture).save(buffer, format="PNG")
    return buffer.getvalue()
