"""Pictures that are not one handwritten digit, for training the model's 11th output
("none of the ten").

Every negative is made from what training may see: MNIST's own training digits (two side
by side, halves of two put together, a digit cut into shuffled patches, a digit mirrored
or turned so it is no digit), blank paper with grain, pure noise, random pen scribbles,
and Fashion-MNIST's *train* split. Never letters, other digit sets or anything rendered
from a font: those are what the held-out checks (bench/ood.py) refuse.

Each picture is made the way a user's picture arrives (any size, dark ink on light paper
or light on dark) and then laid out as the service lays out an upload
(digitlab.inference.preprocess): inverted to light ink, denoised, cropped, fitted to
20x20 and centred by mass. The pen-width step of serving is left out (it costs ~3 ms a
picture); training's own stroke augmentation varies the pen instead.

Pure numpy and Pillow, deterministic for a seed.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from PIL import Image, ImageDraw

from digitlab.inference.preprocess import (
    DENOISE_SIDE,
    MIN_CONTRAST,
    SIZE,
    background_and_noise,
    centre,
    denoised,
    fit_box,
    ink_box,
    light_ink,
)

# The label of the 11th output.
NONE_LABEL = 10
# Bumped whenever what the generator makes changes (it is recorded in the model card).
GENERATOR_VERSION = 2

Digits = npt.NDArray[np.uint8]  # (N, 28, 28), light ink on black
Picture = npt.NDArray[np.uint8]  # (H, W) of any size, either polarity

# The share of each kind in a pool, before Fashion-MNIST is counted in (its share is
# `FASHION_SHARE` when images are given).
KIND_SHARES: dict[str, float] = {
    "blank": 0.05,
    "noise": 0.09,
    "scribble": 0.15,
    "glyph": 0.2,
    "overlay": 0.15,
    "pair": 0.08,
    "halves": 0.08,
    "patches": 0.06,
    "turned": 0.14,
}
FASHION_SHARE = 0.25
# Digits that mirrored left-right, or turned a quarter, are no digit; 0, 1 and 8 mirror
# into themselves and 6 and 9 turn into each other upside down.
MIRRORABLE = (2, 3, 4, 5, 6, 7, 9)
UPSIDE_DOWN = (3, 4, 7)


def lay_out(picture: Picture) -> Digits:
    """A picture of any size as the service lays out an upload (preprocess steps 3-7 and
    9), without changing the pen."""
    ink = light_ink(picture.astype(np.float32))
    ink = denoised(ink)
    background, noise = background_and_noise(ink)
    floor = background + (3 * noise if min(ink.shape) >= DENOISE_SIDE else 0.0)
    strongest = float(ink.max())
    if strongest - floor < MIN_CONTRAST:
        return np.zeros((SIZE, SIZE), dtype=np.uint8)
    stretched = np.clip((ink - floor) * (255.0 / (strongest - floor)), 0, 255)
    crop = stretched[ink_box(stretched)].astype(np.float32)
    return centre(fit_box(crop))


def blank(rng: np.random.Generator) -> Picture:
    """Paper with grain and perhaps a slow shading, at a random size."""
    side = int(rng.choice([28, 48, 96, 160]))
    paper = rng.uniform(120, 250)
    sigma = rng.uniform(0, 12)
    ramp = np.linspace(0, rng.uniform(-30, 30), side)[None, :]
    page = paper + ramp + rng.normal(0, sigma, (side, side))
    return np.clip(page, 0, 255).astype(np.uint8)


def noise(rng: np.random.Generator) -> Picture:
    """Uniform, Gaussian, salt-and-pepper or blocky noise filling the picture."""
    side = int(rng.choice([28, 28, 40, 64]))
    kind = int(rng.integers(4))
    if kind == 0:
        page = rng.uniform(0, 255, (side, side))
    elif kind == 1:
        page = rng.normal(rng.uniform(60, 200), rng.uniform(20, 90), (side, side))
    elif kind == 2:
        page = np.where(rng.random((side, side)) < rng.uniform(0.02, 0.4), 0.0, 255.0)
    else:
        cells = int(rng.integers(3, 10))
        small = rng.uniform(0, 255, (cells, cells)).astype(np.float32)
        page = np.asarray(Image.fromarray(small).resize((side, side)), np.float32)
    return np.clip(page, 0, 255).astype(np.uint8)


def smooth(points: npt.NDArray[np.float64], rounds: int = 3) -> npt.NDArray[np.float64]:
    """Chaikin's corner cutting: a polyline rounded into a hand-drawn curve."""
    for _ in range(rounds):
        q = 0.75 * points[:-1] + 0.25 * points[1:]
        r = 0.25 * points[:-1] + 0.75 * points[1:]
        points = np.concatenate([points[:1], np.stack([q, r], 1).reshape(-1, 2), points[-1:]])
    return points


def scribble(rng: np.random.Generator) -> Picture:
    """One to three random pen strokes, dark on white, on a 112-pixel pad."""
    side = 112
    page = Image.new("L", (side, side), 255)
    pen = ImageDraw.Draw(page)
    width = int(rng.integers(5, 15))
    for _ in range(int(rng.integers(1, 4))):
        count = int(rng.integers(5, 12))
        # A random walk with momentum: loops and zigzags rather than uniform dots.
        step = rng.normal(0, 0.25, 2)
        points = [rng.uniform(0.2, 0.8, 2)]
        for _ in range(count - 1):
            step = 0.5 * step + rng.normal(0, 0.25, 2)
            points.append(np.clip(points[-1] + step, 0.05, 0.95))
        path = np.array(points)
        path = smooth(path) if rng.random() < 0.7 else path
        xy = [(float(x) * side, float(y) * side) for x, y in path]
        pen.line(xy, fill=0, width=width, joint="curve")
    return np.asarray(page, np.uint8)


def glyph(rng: np.random.Generator) -> Picture:
    """Two to four strokes, each a straight line or an arc of an ellipse, put together at
    random on a 56-pixel pad: shapes of a pen's kind that are (almost always) no digit."""
    side = 56
    page = Image.new("L", (side, side), 255)
    pen = ImageDraw.Draw(page)
    width = int(rng.integers(3, 7))
    for _ in range(int(rng.integers(2, 5))):
        if rng.random() < 0.5:
            path = rng.uniform(0.1, 0.9, (2, 2))
        else:
            centre, radii = rng.uniform(0.3, 0.7, 2), rng.uniform(0.1, 0.35, 2)
            start = rng.uniform(0, 2 * np.pi)
            t = np.linspace(start, start + rng.uniform(0.5, 1.6) * np.pi, 16)
            path = centre + radii * np.stack([np.cos(t), np.sin(t)], 1)
        pen.line([(float(x) * side, float(y) * side) for x, y in path], fill=0, width=width)
    return np.asarray(page, np.uint8)


def overlay(a: Digits, b: Digits, rng: np.random.Generator) -> Picture:
    """Two digits drawn over each other, the second turned and shifted: MNIST's own pen
    in a shape that is no digit."""
    turned_b = np.rot90(b, int(rng.integers(1, 4)))
    dy, dx = rng.integers(-6, 7, size=2)
    return np.maximum(a, np.roll(turned_b, (int(dy), int(dx)), axis=(0, 1)))


def pair(a: Digits, b: Digits, rng: np.random.Generator) -> Picture:
    """Two digits side by side, as one picture."""
    gap = int(rng.integers(0, 6))
    return np.concatenate([a, np.zeros((SIZE, gap), np.uint8), b], axis=1)


def halves(a: Digits, b: Digits, rng: np.random.Generator) -> Picture:
    """The left half of one digit beside the right half of another, set apart a little."""
    cut = int(rng.integers(10, 18))
    gap = int(rng.integers(0, 5))
    shift = int(rng.integers(-5, 6))
    right = np.roll(b[:, cut:], shift, axis=0)
    return np.concatenate([a[:, :cut], np.zeros((SIZE, gap), np.uint8), right], axis=1)


def patches(a: Digits, rng: np.random.Generator) -> Picture:
    """A digit cut into 7x7 patches, shuffled."""
    tiles = a.reshape(4, 7, 4, 7).transpose(0, 2, 1, 3).reshape(16, 7, 7)
    tiles = tiles[rng.permutation(16)]
    shuffled: Picture = tiles.reshape(4, 4, 7, 7).transpose(0, 2, 1, 3).reshape(SIZE, SIZE)
    return shuffled


def turned(a: Digits, label: int, rng: np.random.Generator) -> Picture:
    """A digit mirrored, turned a quarter, or (for some) upside down: no longer a digit.
    A 0 turned is still a 0 (a wide one), so a 0 is cut into patches instead."""
    choice = int(rng.integers(3))
    if label == 0:
        return patches(a, rng)
    if choice == 0 and label in MIRRORABLE:
        return a[:, ::-1].copy()
    if choice == 1 and label in UPSIDE_DOWN:
        return a[::-1, ::-1].copy()
    return np.rot90(a, 1 if rng.random() < 0.5 else 3).copy()


def make_negatives(
    count: int,
    digits: Digits,
    labels: npt.NDArray[np.uint8],
    fashion: Digits | None,
    seed: int,
) -> Digits:
    """`count` negatives (N, 28, 28), light ink on black, in MNIST's layout; the same
    for the same arguments."""
    rng = np.random.default_rng(seed)
    shares = dict(KIND_SHARES)
    if fashion is not None and len(fashion):
        scale = 1 - FASHION_SHARE
        shares = {k: v * scale for k, v in shares.items()} | {"fashion": FASHION_SHARE}
    names = list(shares)
    weights = np.array([shares[n] for n in names])
    kinds = rng.choice(len(names), size=count, p=weights / weights.sum())
    out = np.zeros((count, SIZE, SIZE), np.uint8)
    for i, k in enumerate(kinds):
        out[i] = lay_out(_one(names[int(k)], digits, labels, fashion, rng))
    return out


def _one(
    kind: str,
    digits: Digits,
    labels: npt.NDArray[np.uint8],
    fashion: Digits | None,
    rng: np.random.Generator,
) -> Picture:
    if kind == "blank":
        return blank(rng)
    if kind == "noise":
        return noise(rng)
    if kind == "scribble":
        return scribble(rng)
    if kind == "glyph":
        return glyph(rng)
    if kind == "fashion":
        assert fashion is not None
        item: Picture = fashion[int(rng.integers(len(fashion)))]
        return item
    i, j = rng.integers(len(digits), size=2)
    if kind == "pair":
        return pair(digits[i], digits[j], rng)
    if kind == "overlay":
        return overlay(digits[i], digits[j], rng)
    if kind == "halves":
        return halves(digits[i], digits[j], rng)
    if kind == "patches":
        return patches(digits[i], rng)
    return turned(digits[i], int(labels[i]), rng)
