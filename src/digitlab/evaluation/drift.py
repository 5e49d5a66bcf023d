"""Drift and live-accuracy figures for the monitor: the reference distributions a model
card keeps (the training label mix, the test set's confidence histogram), the
population stability index (PSI) of live traffic against them, and Wilson intervals.

PSI = sum over bins of (live - ref) * ln(live / ref), on shares. Below 0.1 the traffic
looks like the reference; 0.1-0.2 is a moderate shift; above `PSI_THRESHOLD` (0.2) the
inputs are not what the model was trained and tested on.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from digitlab.store.monitor import BINS, CONFIDENCE_EDGES

PSI_THRESHOLD = 0.2
# A share of 0 in either distribution would make PSI infinite; floor each share.
_FLOOR = 1e-4


def confidence_histogram(probabilities: npt.NDArray[np.floating[Any]]) -> list[int]:
    """Counts per monitor confidence bin of the top probability of each (N, 10) row."""
    top = probabilities.max(axis=1)
    # side="right": a confidence equal to an edge falls in the bin above, as in the SQL.
    bins = np.searchsorted(np.asarray(CONFIDENCE_EDGES), top, side="right")
    return [int(c) for c in np.bincount(bins, minlength=BINS)]


def confidence_reference(logits: npt.NDArray[np.floating[Any]]) -> dict[str, list[Any]]:
    """For the model card's metrics: the test set's confidence histogram from the served
    model's (N, 10) logits, with the bin edges it was counted with."""
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))  # a stable softmax
    probabilities = shifted / shifted.sum(axis=1, keepdims=True)
    return {
        "test_confidence_hist": confidence_histogram(probabilities),
        "test_confidence_edges": list(CONFIDENCE_EDGES),
    }


def class_counts(labels: npt.NDArray[np.integer[Any]]) -> list[int]:
    return [int(c) for c in np.bincount(labels.astype(np.int64), minlength=10)]


def shares(counts: Sequence[float]) -> list[float]:
    total = float(sum(counts))
    return [c / total for c in counts] if total else [0.0] * len(counts)


def psi(reference: Sequence[float], live: Sequence[float]) -> float | None:
    """PSI of `live` counts against `reference` counts (or shares); None when either is
    empty."""
    if not sum(reference) or not sum(live):
        return None
    ref = [max(s, _FLOOR) for s in shares(reference)]
    now = [max(s, _FLOOR) for s in shares(live)]
    return sum((n - r) * math.log(n / r) for r, n in zip(ref, now, strict=True))


def wilson(correct: int, n: int, z: float = 1.96) -> tuple[float, float] | None:
    """The 95% Wilson score interval of a share `correct`/`n` (sound at small n and at
    0 or 100%, unlike the normal approximation); None when n is 0."""
    if n <= 0:
        return None
    p = correct / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


def training_mix(card: dict[str, Any]) -> tuple[list[float], str]:
    """The label mix the version was trained on and where it came from: the card's
    training label counts; for older cards the test set's labels (the confusion matrix's
    rows, MNIST's two mixes differ by under 0.3 points); else uniform."""
    counts = (card.get("dataset") or {}).get("class_counts")
    if counts and len(counts) == 10:
        return shares(counts), "training labels"
    confusion = (card.get("metrics") or {}).get("test_confusion")
    if confusion and len(confusion) == 10:
        return shares([sum(row) for row in confusion]), "test-set labels"
    return [0.1] * 10, "uniform (the model card has no label counts)"


def reference_confidence(card: dict[str, Any]) -> list[int] | None:
    """The test set's confidence histogram in the card, when it was counted with these
    bins (cards from before the monitor have none)."""
    metrics = card.get("metrics") or {}
    hist, edges = metrics.get("test_confidence_hist"), metrics.get("test_confidence_edges")
    if not hist or edges != list(CONFIDENCE_EDGES) or len(hist) != BINS:
        return None
    return [int(c) for c in hist]
