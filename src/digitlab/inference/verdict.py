"""The not-a-digit verdict: from a model's raw outputs to (N, 10) digit probabilities and
an (N,) digit score, higher meaning more like one handwritten digit.

A model exported with an 11th output ("none of the ten") scores 1 - p(none); an older
model with ten outputs falls back to the maximum softmax. `is_digit` is the score at or
above the threshold: the `verdict_threshold` setting when set, else the model card's
`verdict.threshold` (calibrated at training on MNIST validation digits), else
DEFAULT_THRESHOLD.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from digitlab.registry.versions import ModelVersion

DEFAULT_THRESHOLD = 0.5


def softmax(logits: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    shifted = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(shifted)
    probs: npt.NDArray[np.float32] = (e / e.sum(axis=1, keepdims=True)).astype(np.float32)
    return probs


def split_outputs(
    logits: npt.NDArray[np.float32],
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
    """(N, 10) or (N, 11) logits to ((N, 10) digit probabilities, (N,) digit scores)."""
    probs = softmax(logits)
    if logits.shape[1] == 10:
        return probs, probs.max(axis=1)
    digits = probs[:, :10]
    mass = digits.sum(axis=1, keepdims=True)
    scores: npt.NDArray[np.float32] = (1.0 - probs[:, 10]).astype(np.float32)
    return (digits / np.maximum(mass, 1e-12)).astype(np.float32), scores


def verdict_threshold(model: ModelVersion, override: float | None = None) -> float:
    """`override` when given (the `verdict_threshold` setting), else the digit-score
    threshold the model card records, else the default."""
    if override is not None:
        return float(override)
    verdict = model.card.get("verdict")
    if isinstance(verdict, dict):
        value = verdict.get("threshold")
        if isinstance(value, int | float) and 0.0 <= value <= 1.0:
            return float(value)
    return DEFAULT_THRESHOLD
