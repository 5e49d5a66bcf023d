"""Reading a whole number ("2026") from one picture: find each digit's box, then read
every box as a single digit, the way `preprocess` makes one.

1. decode and turn to light ink on black exactly as a single digit is (`preprocess`);
2. binarize, label the connected strokes, drop specks;
3. merge strokes that lie over one another (a 5 whose top is apart, a 4 in two strokes);
4. cut each group of strokes into digits: every candidate piece (the whole group, and
   the pieces between candidate cuts at the ink's thin columns) is normalised like a
   single digit and read by the model in ONE call with the rest; a small dynamic
   program keeps the tiling whose pieces score highest (WEIGHTS times their features:
   how sure the model is of a piece, and its shape);
5. drop what the model says is not a digit (a dash, a smudge), order left to right.

Pure numpy and Pillow; no torch. `read_number` is what the API, the CLI and the bench call.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from PIL import Image

from digitlab.inference.components import FRAGMENT, groups_of, label_boxes, label_components
from digitlab.inference.cuts import Path, between, cut_paths
from digitlab.inference.predictor import Batch
from digitlab.inference.preprocess import (
    DENOISE_SIDE,
    MIN_CONTRAST,
    SIZE,
    Digit,
    Gray,
    ImageError,
    background_and_noise,
    decode,
    denoised,
    grayscale,
    light_ink,
    normalise,
    shrink,
)

MAX_DIGITS = 12
# Each candidate piece costs ~1 ms to cut out and normalise: a picture that makes more is
# refused before that work (a 2048-pixel wavy line made ~3,000). Numbers of 12 MNIST digits
# made at most 1,059 (overlapping; 844 touching, 221 spaced; 10 numbers a layout).
MAX_CANDIDATES = 2000
# Pictures lower than this are enlarged first: an 8x8 scan's strokes are blobs that
# touch their neighbours; enlarged, thresholding keeps them apart.
MIN_HEIGHT = 48
# Ink below this fraction of full strength is background when finding strokes. Low, since
# the faint ink of a thin loop or a stroke's end is what tells a 9 from a 7 and keeps a
# 2's tail with its body: at 0.35 a piece lost it. Numbers of MNIST test digits, 150 a
# layout, two seeds: 0.18 read 0.6 (`fast`) and 1.1 (`best`) points more exactly than
# 0.35 (docs/numbers.md).
BINARY_THRESHOLD = 0.18
# A digit is at most this many times wider than tall (a flat 0, 2 or 5); a dash is flatter.
FLAT = 2.0
# A group wider than this times its height may hold more than one digit.
SPLIT_ASPECT = 1.0
# Pieces narrower or wider than these multiples of the group's height are not tried.
MIN_PIECE, MAX_PIECE = 0.08, 1.1
# A cut-off piece whose ink is lower than this fraction of its group's is no digit.
MIN_PIECE_HEIGHT = 0.6
# Candidate cuts every this fraction of the group's height (or the thinnest column near).
CUT_STEP = 1 / 8
# A cut path keeps within this fraction of the line height of the column it started at.
BAND = 0.2
# How much a piece counts as one digit of the number: WEIGHTS times its features (below).
# Fitted by bench/fit_reader.py, a structured perceptron over the same dynamic program, on
# numbers composed from MNIST *training* digits in every layout of numberpics, read by a
# `fast` and a `best` model (2026-12-07). Confidence alone prefers a confident "5 with a
# sliver of 1" to the 5 and the 1; the piece's shape tells them apart.
FEATURES = (
    "bias",  # per piece: a split needs the model to be surer of the pieces
    "log_confidence",
    "margin",  # log-confidence less that of the runner-up digit
    "width",  # of the piece's ink, relative to the line height (or its group's)
    "too_wide",  # how much wider than tall
    "height",
    "whole",  # the piece is its whole group of strokes
    "one_width",  # width when read as a 1 (a 1 is narrow)
    "one",
    "width_squared",
    "not_digit",  # the verdict refuses it
)
WEIGHTS = np.array(
    [-6.690, 0.632, 0.320, 0.764, -7.105, 4.319, 1.167, 0.435, -0.443, -3.532, -0.423]
)
# A piece the verdict refuses still counts as a digit of the number when it is this tall
# (of the line) and its digit score at least KEEP_SCORE: between digits, a stroke of full
# height is an odd-looking digit unless the model is sure it is none, while a dash or a
# smudge is lower. (With `best`, whose verdict refuses more shifted digits than `fast`'s,
# 1.6 points more numbers of MNIST test digits read exactly than a 90% confidence rule.)
KEEP_HEIGHT, KEEP_SCORE = 0.8, 0.15

Predict = Callable[[npt.NDArray[np.uint8]], Batch]


@dataclass(frozen=True)
class ReadDigit:
    prediction: int
    confidence: float
    is_digit: bool
    box: tuple[int, int, int, int]  # x, y, width, height in the picture's pixels
    image: Digit  # the 28x28 the model saw
    probabilities: npt.NDArray[np.float32]


@dataclass(frozen=True)
class Reading:
    digits: list[ReadDigit]
    batch: Batch  # the one model call (all candidates)
    seconds: float

    @property
    def text(self) -> str:
        return "".join(str(d.prediction) for d in self.digits)

    @property
    def confidence(self) -> float:
        """The probability that every digit is right: the product of theirs (0 when no
        number was found)."""
        if not self.digits:
            return 0.0
        return float(math.prod(d.confidence for d in self.digits))


@dataclass(frozen=True)
class Piece:
    group: int
    left: int  # index of the cut on its left among its group's cuts (0: the left edge)
    right: int


@dataclass(frozen=True)
class Group:
    """One group of strokes, cropped to its box, with its candidate cuts."""

    mask: npt.NDArray[np.bool_]  # its strokes
    near: npt.NDArray[np.bool_]  # and the pixels next to them (anti-aliased edges)
    x0: int
    y0: int  # the crop's place in the picture
    cuts: list[Path]  # left edge, the cut paths, right edge


def ink_of(data: bytes) -> tuple[Gray, float]:
    """The picture's ink (0..255, light on black, background removed) and the scale from
    its pixels back to the upload's."""
    picture = decode(data)
    try:
        work = shrink(picture)
        ink = light_ink(grayscale(work))
    except (OSError, ValueError) as exc:
        raise ImageError(f"cannot convert this image ({exc})") from None
    scale = picture.width / ink.shape[1]
    if ink.shape[0] < MIN_HEIGHT:
        factor = math.ceil(MIN_HEIGHT / ink.shape[0])
        size = (ink.shape[1] * factor, ink.shape[0] * factor)
        ink = np.asarray(Image.fromarray(ink).resize(size, Image.Resampling.BILINEAR), np.float32)
        scale /= factor
    ink = denoised(ink)
    background, noise = background_and_noise(ink)
    floor = background + (3 * noise if min(ink.shape) >= DENOISE_SIDE else 0.0)
    strongest = float(ink.max())
    if strongest - floor < MIN_CONTRAST:
        return np.zeros_like(ink), scale  # blank paper: nothing to read
    stretched = np.clip((ink - floor) * (255.0 / (strongest - floor)), 0, 255)
    return stretched.astype(np.float32), scale


def grown(mask: npt.NDArray[np.bool_]) -> npt.NDArray[np.bool_]:
    """The mask and its 4-neighbours: anti-aliased edges come along with the strokes."""
    near = mask.copy()
    near[1:] |= mask[:-1]
    near[:-1] |= mask[1:]
    near[:, 1:] |= mask[:, :-1]
    near[:, :-1] |= mask[:, 1:]
    return near


def group_of(ink: Gray, mask: npt.NDArray[np.bool_], line: float) -> Group:
    """The group cropped (a pixel of margin) with its cuts: only its edges when it is
    narrow enough for one digit; else also the paths through the least ink, started
    every CUT_STEP of the line height and at the thinnest column near each."""
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    y0, y1 = max(0, int(rows[0]) - 1), min(mask.shape[0], int(rows[-1]) + 2)
    x0, x1 = max(0, int(cols[0]) - 1), min(mask.shape[1], int(cols[-1]) + 2)
    # A copy, not a view: a view would keep the whole picture's mask alive per group. The
    # crop holds all the group's ink with a pixel to spare, so it grows as the whole would.
    own = mask[y0:y1, x0:x1].copy()
    near = grown(own)
    height, width = own.shape
    edges = [np.zeros(height, np.int32), np.full(height, width, np.int32)]
    size = max(float(rows[-1] - rows[0] + 1), 0.8 * line)
    if cols[-1] - cols[0] + 1 <= SPLIT_ASPECT * size:
        return Group(own, near, x0, y0, edges)
    step = max(1, round(CUT_STEP * size))
    profile = own.sum(axis=0)
    starts = set()
    for at in range(step, width - step // 2, step):
        lo, hi = max(1, at - step // 2), min(width - 1, at + step // 2 + 1)
        starts.add(at)
        if hi > lo:  # strokes cross there, not through a loop
            starts.add(lo + int(np.argmin(profile[lo:hi])))
    cost = np.where(near, ink[y0:y1, x0:x1] / 255.0, 0.0).astype(np.float32)
    paths = cut_paths(cost, sorted(starts), max(1, round(BAND * size)))
    return Group(own, near, x0, y0, [edges[0], *paths, edges[1]])


def candidate_pieces(group: Group, k: int, line: float) -> list[Piece]:
    """The whole group first, then the pieces between two of its cuts that are neither
    too narrow nor too wide (measured between the cuts' middles) for one digit."""
    height = group.mask.shape[0]
    middles = [float(c.mean()) for c in group.cuts]
    last = len(group.cuts) - 1
    pieces = [Piece(k, 0, last)]
    size = max(height - 2, 0.8 * line)
    low, high = MIN_PIECE * size, MAX_PIECE * size
    for i in range(last):
        for j in range(i + 1, last + 1):
            span = middles[j] - middles[i]
            if span > high:
                break
            if span >= low and (i, j) != (0, last):
                pieces.append(Piece(k, i, j))
    return pieces


def crop(ink: Gray, group: Group, piece: Piece) -> tuple[Gray, tuple[int, ...]]:
    """The piece's ink alone (its group's strokes between its cuts, edges kept), padded,
    and its box (x, y, w, h) in work pixels; an empty box when it holds no ink."""
    width = group.mask.shape[1]
    region = between(group.cuts[piece.left], group.cuts[piece.right], width)
    own = group.mask & region
    rows = np.flatnonzero(own.any(axis=1))
    if len(rows) == 0:
        return np.zeros((0, 0), np.float32), ()
    cols = np.flatnonzero(own.any(axis=0))
    near = grown(own) & group.near & region
    window = ink[group.y0 : group.y0 + own.shape[0], group.x0 : group.x0 + width]
    part = np.where(near, window, 0)
    r0, r1 = max(0, rows[0] - 1), rows[-1] + 2
    c0, c1 = max(0, cols[0] - 1), cols[-1] + 2
    box = (
        group.x0 + int(cols[0]),
        group.y0 + int(rows[0]),
        int(cols[-1] - cols[0] + 1),
        int(rows[-1] - rows[0] + 1),
    )
    return np.pad(part[r0:r1, c0:c1], 2).astype(np.float32), box


def best_cuts(pieces: list[Piece], scores: list[float]) -> list[int]:
    """Indices of the pieces that tile the group from its left edge to its right edge
    with the highest total score (a dynamic program over the cut positions)."""
    start, end = pieces[0].left, pieces[0].right
    best: dict[int, tuple[float, list[int]]] = {start: (0.0, [])}
    order = sorted(range(len(pieces)), key=lambda k: (pieces[k].left, pieces[k].right))
    for k in order:
        here = best.get(pieces[k].left)
        if here is None or not math.isfinite(scores[k]):
            continue
        total = here[0] + scores[k]
        known = best.get(pieces[k].right)
        if known is None or total > known[0]:
            best[pieces[k].right] = (total, [*here[1], k])
    return best[end][1] if end in best else [0]


@dataclass(frozen=True)
class Candidates:
    pieces: list[Piece]
    images: list[Digit]
    boxes: list[tuple[int, ...]]
    sizes: list[float]  # the height a digit of the piece's group would have
    line: float


def candidates(ink: Gray) -> Candidates:
    """Every candidate piece of every group of strokes, normalised for the model; ImageError
    when there are more than MAX_CANDIDATES, before any is cut out and normalised."""
    labels, count = label_components(ink >= BINARY_THRESHOLD * 255)
    grouped, n = groups_of(labels, count)
    left, right, top, bottom = label_boxes(grouped, n)
    heights = [int(h) for h in (bottom - top)[1:]]
    widths = [int(w) for w in (right - left)[1:]]
    line = float(np.median(heights)) if heights else 0.0
    tallest = max(heights, default=0)
    planned = []
    for k in range(n):
        # Smaller than half the tallest: a dash, a dot, a smudge; not a digit of this
        # number. A wide, flat digit written small (an MNIST 0 or 5 at 0.7 the size of
        # its neighbours is under half their height) counts by its width, up to FLAT
        # times its height: a dash is flatter.
        extent = max(heights[k], min(widths[k], FLAT * heights[k]))
        if extent >= FRAGMENT * tallest:
            group = group_of(ink, grouped == k + 1, line)  # one group's mask at a time
            planned.append((k, group, candidate_pieces(group, k, line)))
    if sum(len(pieces) for _, _, pieces in planned) > MAX_CANDIDATES:
        raise ImageError(f"too many strokes to read as a number of at most {MAX_DIGITS} digits")
    found = Candidates([], [], [], [], line)
    for k, group, pieces in planned:
        height = heights[k]
        size = max(float(height), line)
        for spot, piece in enumerate(pieces):
            part, box = crop(ink, group, piece)
            if box and (spot == 0 or box[3] >= MIN_PIECE_HEIGHT * height):
                found.pieces.append(piece)
                found.images.append(normalise(part))
                found.boxes.append(box)
                found.sizes.append(size)
    return found


def groups(found: Candidates) -> list[list[int]]:
    """Each group's candidate pieces (indices into `found`, its whole piece first), groups
    in order."""
    own: dict[int, list[int]] = {}
    for i, piece in enumerate(found.pieces):  # one pass: a number has up to 2,000 pieces
        own.setdefault(piece.group, []).append(i)
    return [own[g] for g in sorted(own)]


def choose(
    found: Candidates, batch: Batch, weights: npt.NDArray[np.float64] = WEIGHTS
) -> list[int]:
    """The pieces kept, left to right: per group the best tiling, less what the model
    says is not a digit (a dash, a smudge: not part of the number)."""
    scores = list(features(found, batch) @ weights)
    chosen: list[int] = []
    for own in groups(found):
        best = best_cuts([found.pieces[i] for i in own], [scores[i] for i in own])
        chosen += [own[i] for i in best]
    kept = [k for k in chosen if batch.is_digit[k] or odd_digit(found, batch, k)]
    return sorted(kept, key=lambda i: found.boxes[i][0])


def features(found: Candidates, batch: Batch) -> npt.NDArray[np.float64]:
    """(pieces, FEATURES): how sure the model is of each candidate piece, and its shape;
    all pieces at once (an overlapping number has hundreds)."""
    probs = np.maximum(batch.probabilities.astype(np.float64), 1e-6)
    top2 = np.log(np.sort(probs, axis=1)[:, -2:])  # runner-up, top
    boxes = np.array(found.boxes, np.float64).reshape(len(found.boxes), 4)
    sizes = np.array(found.sizes, np.float64)
    width, height = boxes[:, 2] / sizes, boxes[:, 3] / sizes
    whole = np.zeros(len(found.pieces))
    whole[[own[0] for own in groups(found)]] = 1.0
    one = (batch.probabilities.argmax(axis=1) == 1).astype(np.float64)
    columns = [np.ones_like(width), top2[:, 1], top2[:, 1] - top2[:, 0], width,
               np.maximum(0.0, width - 1.0), height, whole, width * one, one, width * width,
               (~batch.is_digit.astype(bool)).astype(np.float64)]  # fmt: skip
    return np.stack(columns, axis=1)


def odd_digit(found: Candidates, batch: Batch, k: int) -> bool:
    tall = found.boxes[k][3] >= KEEP_HEIGHT * found.line
    score = float(batch.probabilities[k].max() if batch.scores is None else batch.scores[k])
    return tall and score >= KEEP_SCORE


def read_number(data: bytes, predict: Predict) -> Reading:
    """The digits in an image file, left to right: none for a picture that holds no number
    (blank paper, only marks that are not digits), as a single digit's answer says "not a
    digit" rather than failing; ImageError for more than MAX_DIGITS."""
    start = time.perf_counter()
    ink, scale = ink_of(data)
    found = candidates(ink)
    if not found.pieces:
        # Still one model call: the stored reading names the model that found nothing.
        blank = predict(np.zeros((1, SIZE, SIZE), np.uint8))
        return Reading([], blank, time.perf_counter() - start)
    batch = predict(np.stack(found.images))  # every candidate of every group in one call
    digits = []
    for k in choose(found, batch):
        x, y, w, h = found.boxes[k]
        probs = batch.probabilities[k]
        digits.append(
            ReadDigit(
                prediction=int(probs.argmax()),
                confidence=float(probs.max()),
                is_digit=True,  # counted as a digit of the number
                box=(
                    round(x * scale),
                    round(y * scale),
                    max(1, round(w * scale)),
                    max(1, round(h * scale)),
                ),
                image=found.images[k],
                probabilities=probs,
            )
        )
    if len(digits) > MAX_DIGITS:
        raise ImageError(f"{len(digits)} digits found; at most {MAX_DIGITS} can be read at once")
    return Reading(digits, batch, time.perf_counter() - start)
