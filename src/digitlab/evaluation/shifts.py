"""Shifted versions of the MNIST test set: digits as other people and other devices give
them, for measuring how a model generalises beyond MNIST's own writers.

Each shift turns (N, 28, 28) light-on-dark MNIST digits into *pictures* (grey-scale
arrays, dark ink on white paper unless the shift says otherwise, of the size a user
might send) at a given strength; `as_model_input` runs every picture through the serving
preprocessing (`inference.preprocess`), as an upload would be. Strength 0 is always
the plain picture, so each curve starts from the same point.

Made only from the test split: no model trains on any of this. Pure numpy and Pillow.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from PIL import Image, ImageFilter

from digitlab.inference.preprocess import image_to_digit

Digits = npt.NDArray[np.uint8]  # (N, 28, 28), light ink on black
Picture = npt.NDArray[np.uint8]  # (H, W), as a person would send it
Maker = Callable[[Digits, float, np.random.Generator], list[Picture]]

PAPER = 255


def upscale(digit: Digits, side: int) -> Image.Image:
    return Image.fromarray(digit).resize((side, side), Image.Resampling.BICUBIC)


def on_paper(ink: Image.Image | npt.NDArray[np.uint8]) -> Picture:
    """Light ink on black to dark ink on white."""
    pixels = np.asarray(ink, dtype=np.uint8)
    return (PAPER - pixels).astype(np.uint8)


def rotation(digits: Digits, degrees: float, rng: np.random.Generator) -> list[Picture]:
    """Turned by `degrees`, left or right at random (a slanted hand)."""
    signs = rng.choice([-1.0, 1.0], size=len(digits))
    return [
        on_paper(upscale(d, 56).rotate(degrees * s, resample=Image.Resampling.BILINEAR))
        for d, s in zip(digits, signs, strict=True)
    ]


def thickness(digits: Digits, change: float, rng: np.random.Generator) -> list[Picture]:
    """A pen `change` pixels (of 28) thinner (< 0) or thicker (> 0): grey-scale erosion
    or dilation at 4x resolution, so the step is a quarter of a pixel."""
    radius = round(abs(change) * 4)
    size = 2 * radius + 1
    pictures = []
    for d in digits:
        big = upscale(d, 112)
        if radius:
            big = big.filter(
                ImageFilter.MaxFilter(size) if change > 0 else ImageFilter.MinFilter(size)
            )
        pictures.append(on_paper(big))
    return pictures


def scan(digit: Digits, side: int) -> Picture:
    """A low-resolution scan the way the classic 8x8 digit sets were made: the ink,
    binarised, scaled to fill a (4*side)^2 box (aspect kept), counted in 4x4 cells:
    `side` x `side` cells of 0..16, shown dark on white."""
    ink = digit >= 128
    rows, cols = np.nonzero(ink)
    if not len(rows):
        return np.full((side, side), PAPER, np.uint8)
    crop = ink[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]
    box = 4 * side
    h, w = crop.shape
    scale = box / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    scaled = np.asarray(Image.fromarray(crop.astype(np.uint8) * 255).resize(size)) >= 128
    field = np.zeros((box, box), bool)
    top, left = (box - size[1]) // 2, (box - size[0]) // 2
    field[top : top + size[1], left : left + size[0]] = scaled
    counts = field.reshape(side, 4, side, 4).sum((1, 3))  # 0..16
    picture: Picture = (PAPER - np.rint(counts * (PAPER / 16))).astype(np.uint8)
    return picture


def low_resolution(digits: Digits, side: float, rng: np.random.Generator) -> list[Picture]:
    """Scanned at `side` x `side` cells (0: the plain picture), then enlarged 8x with
    nearest-neighbour pixels, as such scans are usually shown and sent."""
    if not side:
        return [on_paper(upscale(d, 56)) for d in digits]
    n = round(side)
    return [np.kron(scan(d, n), np.ones((8, 8), np.uint8)) for d in digits]


def tiny(digits: Digits, side: float, rng: np.random.Generator) -> list[Picture]:
    """As `low_resolution`, but sent at its native size: a picture of `side` x `side`."""
    if not side:
        return [on_paper(d) for d in digits]
    return [scan(d, round(side)) for d in digits]


def scan_filling(digits: Digits, side: float, rng: np.random.Generator) -> list[Picture]:
    """As `low_resolution`, but enlarged smoothly to a 28x28 picture that the digit fills
    edge to edge, light on dark, as the cell counts of such sets are usually stored: a
    28x28 picture that is *not* in MNIST's layout."""
    if not side:
        return [PAPER - on_paper(d) for d in digits]
    return [
        np.asarray(
            Image.fromarray(PAPER - scan(d, round(side))).resize((28, 28), Image.Resampling.BICUBIC)
        )
        for d in digits
    ]


def elastic(digits: Digits, alpha: float, rng: np.random.Generator) -> list[Picture]:
    """A wobblier hand: a smooth random displacement of up to about `alpha` pixels."""
    pictures = []
    ys, xs = np.mgrid[0:56, 0:56].astype(np.float32)
    for d in digits:
        big = np.asarray(upscale(d, 56), np.float32)
        if alpha:
            coarse = rng.normal(0, alpha, size=(2, 4, 4)).astype(np.float32)
            dy, dx = (
                np.asarray(Image.fromarray(c).resize((56, 56), Image.Resampling.BICUBIC))
                for c in coarse
            )
            # Displacements are given in 28-pixel units; the picture is twice that.
            big = sample(big, ys + 2 * dy, xs + 2 * dx)
        pictures.append(on_paper(np.clip(big, 0, 255).astype(np.uint8)))
    return pictures


def sample(
    image: npt.NDArray[np.float32], ys: npt.NDArray[np.float32], xs: npt.NDArray[np.float32]
) -> npt.NDArray[np.float32]:
    """Bilinear sampling of `image` at fractional coordinates, zero outside."""
    h, w = image.shape
    padded = np.pad(image, 1)
    y = np.clip(ys + 1, 0, h + 0.999)
    x = np.clip(xs + 1, 0, w + 0.999)
    y0, x0 = np.floor(y).astype(int), np.floor(x).astype(int)
    y1, x1 = np.minimum(y0 + 1, h + 1), np.minimum(x0 + 1, w + 1)
    fy, fx = y - y0, x - x0
    top = padded[y0, x0] * (1 - fx) + padded[y0, x1] * fx
    bottom = padded[y1, x0] * (1 - fx) + padded[y1, x1] * fx
    out: npt.NDArray[np.float32] = (top * (1 - fy) + bottom * fy).astype(np.float32)
    return out


def noise(digits: Digits, sigma: float, rng: np.random.Generator) -> list[Picture]:
    """Paper grain and sensor noise: Gaussian noise of `sigma` (of 255) on the picture."""
    pictures = []
    for d in digits:
        paper = on_paper(upscale(d, 56)).astype(np.float32)
        paper += rng.normal(0, sigma, size=paper.shape)
        pictures.append(np.clip(paper, 0, 255).astype(np.uint8))
    return pictures


def inversion(digits: Digits, level: float, rng: np.random.Generator) -> list[Picture]:
    """Light ink on a dark board, at a contrast of 1 - `level` (0: white on black)."""
    ink, board = 255 * (1 - level / 2), 255 * (level / 2)
    pictures = []
    for d in digits:
        big = np.asarray(upscale(d, 56), np.float32) / 255
        pictures.append(np.rint(board + (ink - board) * big).astype(np.uint8))
    return pictures


def off_centre(digits: Digits, offset: float, rng: np.random.Generator) -> list[Picture]:
    """A small digit (40 px) somewhere on a 160 px page: `offset` is how far from the
    middle, as a share of the room there is (1: touching an edge)."""
    pictures = []
    room = (160 - 40) // 2
    for d in digits:
        page = np.full((160, 160), PAPER, np.uint8)
        angle = rng.uniform(0, 2 * np.pi)
        top = room + round(offset * room * np.sin(angle))
        left = room + round(offset * room * np.cos(angle))
        page[top : top + 40, left : left + 40] = on_paper(upscale(d, 40))
        pictures.append(page)
    return pictures


@dataclass(frozen=True)
class Shift:
    name: str
    make: Maker
    strengths: tuple[float, ...]
    unit: str


SHIFTS: dict[str, Shift] = {
    s.name: s
    for s in (
        Shift("rotation", rotation, (0, 10, 20, 30, 40), "degrees"),
        Shift("thickness", thickness, (-1.0, -0.5, 0, 1, 2, 3), "pixels of 28"),
        Shift("low-resolution", low_resolution, (0, 16, 12, 10, 8, 6), "cells a side"),
        Shift("tiny", tiny, (0, 16, 12, 8), "pixels a side"),
        Shift("scan filling 28x28", scan_filling, (0, 12, 8, 6), "cells a side"),
        Shift("elastic", elastic, (0, 1, 2, 3), "pixels"),
        Shift("noise", noise, (0, 40, 80, 120), "sigma of 255"),
        Shift("inversion", inversion, (0, 0.5, 0.8), "lost contrast"),
        Shift("off-centre", off_centre, (0, 0.5, 1.0), "share of the room"),
    )
}


def png(picture: Picture) -> bytes:
    out = io.BytesIO()
    Image.fromarray(picture).save(out, format="PNG")
    return out.getvalue()


def as_model_input(pictures: list[Picture]) -> Digits:
    """Each picture encoded as PNG and preprocessed as the service does an upload."""
    return np.stack([image_to_digit(png(p)) for p in pictures])


def shifted(digits: Digits, shift: Shift, strength: float, seed: int = 0) -> Digits:
    """The 28x28 digits the model sees for `digits` under `shift` at `strength`."""
    rng = np.random.default_rng(seed)
    return as_model_input(shift.make(digits, strength, rng))
