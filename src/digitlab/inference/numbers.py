"""Reading a whole number ("2026") from one picture: find each digit's box, then read
every box as a single digit, the way `preprocess` makes one.

1. decode and turn to light ink on black exactly as a single digit is (`preprocess`);
2. binarize, label the connected strokes, drop specks;
3. merge strokes that lie over one another (a 5 whose top is apart, a 4 in two strokes);
4. cut each group of strokes into digits: every candidate piece (the whole group, and
   the pieces between candidate cuts at the ink's thin columns) is normalised like a
   single digit and scored by the model in ONE call with the rest; a small dynamic
   program keeps the cuts whose pieces the model reads most confidently;
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

from digitlab.inference.components import FRAGMENT, groups_of, label_components
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
# Pictures lower than this are enlarged first: an 8x8 scan's strokes are blobs that
# touch their neighbours; enlarged, thresholding keeps them apart.
MIN_HEIGHT = 48
# Ink below this fraction of full strength is background when finding strokes.
BINARY_THRESHOLD = 0.35
# A group wider than this times its height may hold more than one digit.
SPLIT_ASPECT = 1.0
# Pieces narrower or wider than these multiples of the group's height are not tried.
MIN_PIECE, MAX_PIECE = 0.2, 1.1
# A cut-off piece whose ink is lower than this fraction of its group's is no digit.
MIN_PIECE_HEIGHT = 0.6
# Candidate cuts every this fraction of the group's height (or the thinnest column near).
CUT_STEP = 1 / 8
# A piece wider than its height costs this much log-confidence per unit of excess.
WIDE_PENALTY = 4.0
WIDEST = 1.2
# Each piece costs this much: a split needs the model to be surer of the pieces.
PIECE_COST = 1.5

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
    x0: int
    x1: int  # columns [x0, x1) of the group's ink


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


def candidate_pieces(mask: npt.NDArray[np.bool_], group: int, line: float) -> list[Piece]:
    """The whole group, and when it is wide for one digit, the pieces between candidate
    cuts: every CUT_STEP of the line height, and the columns where the ink is thinnest."""
    cols = np.flatnonzero(mask.any(axis=0))
    x0, x1 = int(cols[0]), int(cols[-1]) + 1
    rows = np.flatnonzero(mask.any(axis=1))
    height = int(rows[-1] - rows[0] + 1)
    pieces = [Piece(group, x0, x1)]
    size = max(height, 0.8 * line)
    if x1 - x0 <= SPLIT_ASPECT * size:
        return pieces
    step = max(1, round(CUT_STEP * size))
    profile = mask[:, x0:x1].sum(axis=0)
    # The thinnest column near each grid cut: strokes cross there, not through a loop.
    cuts = {x0, x1}
    for at in range(x0 + step, x1 - step // 2, step):
        lo, hi = max(x0 + 1, at - step // 2), min(x1 - 1, at + step // 2 + 1)
        cuts.add(at)
        if hi > lo:
            cuts.add(lo + int(np.argmin(profile[lo - x0 : hi - x0])))
    ordered = sorted(cuts)
    low, high = MIN_PIECE * size, MAX_PIECE * size
    for i, a in enumerate(ordered):
        for b in ordered[i + 1 :]:
            if b - a > high:
                break
            if b - a >= low and (a, b) != (x0, x1):
                pieces.append(Piece(group, a, b))
    return pieces


def crop(ink: Gray, mask: npt.NDArray[np.bool_], piece: Piece) -> tuple[Gray, tuple[int, ...]]:
    """The piece's ink alone (its group's strokes in its columns, edges kept), padded, and
    its box (x, y, w, h) in work pixels; an empty box when it holds no ink."""
    near = mask.copy()  # grown by a pixel so that anti-aliased edges come along
    near[1:] |= mask[:-1]
    near[:-1] |= mask[1:]
    near[:, 1:] |= mask[:, :-1]
    near[:, :-1] |= mask[:, 1:]
    part = np.where(near[:, piece.x0 : piece.x1], ink[:, piece.x0 : piece.x1], 0)
    rows = np.flatnonzero(mask[:, piece.x0 : piece.x1].any(axis=1))
    if len(rows) == 0:
        return part[:0], ()
    y0, y1 = max(0, rows[0] - 1), rows[-1] + 2
    box = (piece.x0, int(rows[0]), piece.x1 - piece.x0, int(rows[-1] - rows[0] + 1))
    return np.pad(part[y0:y1], 2).astype(np.float32), box


def best_cuts(pieces: list[Piece], scores: list[float]) -> list[int]:
    """Indices of the pieces that tile the group from its left edge to its right edge
    with the highest total score (a dynamic program over the cut positions)."""
    start, end = pieces[0].x0, pieces[0].x1
    best: dict[int, tuple[float, list[int]]] = {start: (0.0, [])}
    order = sorted(range(len(pieces)), key=lambda k: (pieces[k].x0, pieces[k].x1))
    for k in order:
        here = best.get(pieces[k].x0)
        if here is None or not math.isfinite(scores[k]):
            continue
        total = here[0] + scores[k]
        known = best.get(pieces[k].x1)
        if known is None or total > known[0]:
            best[pieces[k].x1] = (total, [*here[1], k])
    return best[end][1] if end in best else [0]


def piece_score(probabilities: npt.NDArray[np.float32], is_digit: bool, aspect: float) -> float:
    """How much the model believes a piece is one digit: its log-confidence, less a
    penalty for a piece wider than tall and for one it says is not a digit."""
    score = math.log(max(float(probabilities.max()), 1e-6))
    score -= WIDE_PENALTY * max(0.0, aspect - WIDEST) + PIECE_COST
    return score if is_digit else score - 3.0


def read_number(data: bytes, predict: Predict) -> Reading:
    """The digits in an image file, left to right: none for a picture that holds no number
    (blank paper, only marks that are not digits), as a single digit's answer says "not a
    digit" rather than failing; ImageError for more than MAX_DIGITS."""
    start = time.perf_counter()
    ink, scale = ink_of(data)
    labels, count = label_components(ink >= BINARY_THRESHOLD * 255)
    groups = groups_of(labels, count)
    if not groups:
        # Still one model call: the stored reading names the model that found nothing.
        blank = predict(np.zeros((1, SIZE, SIZE), np.uint8))
        return Reading([], blank, time.perf_counter() - start)
    heights = [int(np.ptp(np.flatnonzero(g.any(axis=1)))) + 1 for g in groups]
    line = float(np.median(heights))
    # Lower than half the line: a dash, a dot, a smudge; not a digit of this number.
    groups = [g for g, h in zip(groups, heights, strict=True) if h >= FRAGMENT * max(heights)]
    pieces: list[Piece] = []
    images: list[Digit] = []
    boxes: list[tuple[int, ...]] = []
    for k, mask in enumerate(groups):
        height = np.ptp(np.flatnonzero(mask.any(axis=1))) + 1
        for spot, piece in enumerate(candidate_pieces(mask, k, line)):
            part, box = crop(ink, mask, piece)
            if box and (spot == 0 or box[3] >= MIN_PIECE_HEIGHT * height):
                pieces.append(piece)
                images.append(normalise(part))
                boxes.append(box)
    batch = predict(np.stack(images))  # every candidate of every group in one call
    scores = [
        piece_score(batch.probabilities[k], bool(batch.is_digit[k]), boxes[k][2] / boxes[k][3])
        for k in range(len(pieces))
    ]
    chosen: list[int] = []
    for k in range(len(groups)):
        own = [i for i, p in enumerate(pieces) if p.group == k]
        if own:
            best = best_cuts([pieces[i] for i in own], [scores[i] for i in own])
            chosen += [own[i] for i in best]
    digits = []
    for k in sorted(chosen, key=lambda i: boxes[i][0]):
        if not batch.is_digit[k]:
            continue  # a dash, a smudge: not part of the number
        x, y, w, h = boxes[k]
        probs = batch.probabilities[k]
        digits.append(
            ReadDigit(
                prediction=int(probs.argmax()),
                confidence=float(probs.max()),
                is_digit=True,
                box=(
                    round(x * scale),
                    round(y * scale),
                    max(1, round(w * scale)),
                    max(1, round(h * scale)),
                ),
                image=images[k],
                probabilities=probs,
            )
        )
    if len(digits) > MAX_DIGITS:
        raise ImageError(f"{len(digits)} digits found; at most {MAX_DIGITS} can be read at once")
    return Reading(digits, batch, time.perf_counter() - start)
