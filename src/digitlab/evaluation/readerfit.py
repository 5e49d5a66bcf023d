"""Fitting the number reader's piece weights (`digitlab.inference.numbers.WEIGHTS`).

The reader cuts a group of strokes into candidate pieces and keeps the tiling whose pieces
score highest (a dynamic program, `best_cuts`); a piece's score is WEIGHTS times its
FEATURES. An averaged structured perceptron (Collins 2002) fits the weights over that same
program: numbers composed from MNIST digits (`numberpics`), each candidate piece marked
true when it covers one digit, and wherever the program's tiling differs from the true
one the weights move toward the true tiling's features. `bench/fit_reader.py` runs it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from digitlab.data import Split
from digitlab.evaluation.numberpics import LAYOUTS, Layout, compose_spans, png_bytes
from digitlab.inference import numbers
from digitlab.inference.predictor import Batch, Predictor
from digitlab.inference.runtime import OnnxClassifier

Spans = list[tuple[float, float]]
Weights = npt.NDArray[np.float64]
# Where a fit starts: confidence less a cost per piece, less more for a piece wider than
# tall or refused by the verdict (the hand-set score the reader had before 2026-12-07).
START = {"bias": -1.0, "log_confidence": 1.0, "too_wide": -4.0, "not_digit": -3.0}
# A piece covers a digit when it holds this much of the digit's span and no more than
# OTHERS of any other digit's (overlapping digits share a few columns).
OWN, OTHERS = 0.75, 0.35


@dataclass(frozen=True)
class Number:
    layout: str
    truth: str
    found: numbers.Candidates
    batch: Batch | None  # None when no candidate piece was found
    covers: list[int]  # per candidate piece: the digit it covers, or -1


@dataclass(frozen=True)
class Example:
    """One group of strokes that has a choice: its pieces, their features, the true tiling
    (indices into its pieces)."""

    pieces: list[numbers.Piece]
    features: npt.NDArray[np.float64]
    truth: list[int]


def covered(box: tuple[int, ...], scale: float, spans: Spans) -> int:
    """The digit a piece's box covers, or -1; `scale` takes box pixels to the spans'."""
    left, right = box[0] * scale, (box[0] + box[2]) * scale
    shares = [max(0.0, min(right, b) - max(left, a)) / max(b - a, 1e-6) for a, b in spans]
    for k, share in enumerate(shares):
        if share >= OWN and all(s <= OTHERS for j, s in enumerate(shares) if j != k):
            return k
    return -1


def make_numbers(
    digits: Split,
    count: int,
    rng: np.random.Generator,
    predictor: Predictor,
    model: OnnxClassifier | None = None,
    layouts: tuple[Layout, ...] = LAYOUTS,
) -> list[Number]:
    """`count` numbers of 2 to 6 of `digits` a layout, cut into candidate pieces and read
    by `model` (default: the predictor's current one)."""
    made = []
    for layout in layouts:
        for _ in range(count):
            picks = rng.choice(len(digits.labels), size=int(rng.integers(2, 7)), replace=False)
            truth = "".join(str(int(digits.labels[k])) for k in picks)
            picture, spans = compose_spans([digits.images[k] for k in picks], layout, rng)
            ink, scale = numbers.ink_of(png_bytes(picture))
            found = numbers.candidates(ink)
            batch = predictor.predict(np.stack(found.images), model) if found.pieces else None
            covers = [covered(box, scale, spans) for box in found.boxes]
            made.append(Number(layout.name, truth, found, batch, covers))
    return made


def examples(made: list[Number]) -> list[Example]:
    """Every group that has a choice of tilings and a true one."""
    out = []
    for number in made:
        if number.batch is None:
            continue
        feats = numbers.features(number.found, number.batch)
        for own in numbers.groups(number.found):
            if len(own) == 1:
                continue
            pieces = [number.found.pieces[i] for i in own]
            marks = [number.covers[i] for i in own]
            truth = numbers.best_cuts(pieces, [0.0 if m >= 0 else -math.inf for m in marks])
            if all(marks[k] >= 0 for k in truth):
                out.append(Example(pieces, feats[own], truth))
    return out


def start() -> Weights:
    return np.array([START.get(name, 0.0) for name in numbers.FEATURES])


def cut_wrong(data: list[Example], weights: Weights) -> int:
    """How many groups the program cuts otherwise than the truth with these weights."""
    return sum(
        sorted(numbers.best_cuts(e.pieces, list(e.features @ weights))) != sorted(e.truth)
        for e in data
    )


def fit(data: list[Example], epochs: int, seed: int) -> Weights:
    """The averaged perceptron: the mean of the weights after every example."""
    weights = start()
    total, steps = np.zeros_like(weights), 0
    rng = np.random.default_rng(seed)
    for _ in range(epochs):
        for k in rng.permutation(len(data)):
            e = data[k]
            got = numbers.best_cuts(e.pieces, list(e.features @ weights))
            if sorted(got) != sorted(e.truth):
                weights = weights + 0.1 * (e.features[e.truth].sum(0) - e.features[got].sum(0))
            total += weights
            steps += 1
    return total / max(steps, 1)


def exact(made: list[Number], weights: Weights) -> dict[str, float]:
    """The share of numbers read exactly with these weights, per layout."""
    right: dict[str, list[bool]] = {}
    for number in made:
        text = ""
        if number.batch is not None:
            kept = numbers.choose(number.found, number.batch, weights)
            text = "".join(str(int(number.batch.probabilities[k].argmax())) for k in kept)
        right.setdefault(number.layout, []).append(text == number.truth)
    return {layout: float(np.mean(v)) for layout, v in right.items()}
