"""The not-a-digit verdict's training side: how many negatives a run gets (made once
and kept, `negatives_for`), the threshold calibrated on validation digits, and what the
model card records of both. The pictures themselves: digitlab.ml.negatives; serving
reads the card through digitlab.inference.verdict."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from digitlab.config import Settings
from digitlab.data import DataError, Split, load_split
from digitlab.inference.preprocess import SIZE
from digitlab.ml.negatives import (
    FASHION_SHARE,
    GENERATOR_VERSION,
    KIND_SHARES,
    NONE_LABEL,
    Digits,
    make_negatives,
)

if TYPE_CHECKING:
    from digitlab.ml.recipes import TrainConfig

# At most this many different negatives per run; an epoch that needs more repeats them.
POOL = 6000


def calibrate(scores: npt.NDArray[np.float32], accept: float) -> float:
    """The digit-score threshold that accepts the share `accept` of `scores` (the model's
    scores on validation digits), rounded down to 4 decimals so it accepts no fewer."""
    if not 0.0 < accept <= 1.0:
        raise ValueError(f"accept must be a share in (0, 1], not {accept}")
    cut = float(np.quantile(scores.astype(np.float64), 1.0 - accept, method="lower"))
    return max(0.0, min(1.0, float(np.floor(cut * 10_000) / 10_000)))


def negative_count(share: float, digits: int) -> int:
    """How many negatives make `share` of an epoch beside `digits` training digits."""
    if not 0.0 <= share < 0.5:
        raise ValueError(f"negatives must be a share in [0, 0.5), not {share}")
    return round(digits * share / (1 - share))


def negatives_for(
    cfg: TrainConfig,
    digits: Digits,
    labels: npt.NDArray[np.uint8],
    fashion: Digits | None = None,
    cache_dir: Path | None = None,
) -> Digits:
    """The negatives a training run on `digits` uses: `negative_count` of them, at most
    POOL unique ones repeated (augmentation makes each copy differ), from the MNIST-made
    kinds and, when given, Fashion-MNIST. Kept in `cache_dir` (keyed by everything they
    depend on): making them takes seconds (~0.6 ms a picture)."""
    count = negative_count(cfg.negatives, len(digits) - min(cfg.val_size, len(digits) // 5))
    # A dry run trains one batch: a batch of negatives is all it can use.
    unique = min(count, cfg.batch_size if cfg.dry_run else POOL)
    key = hashlib.sha256()
    for part in (digits, labels, fashion if fashion is not None else np.zeros(0, np.uint8)):
        key.update(np.ascontiguousarray(part).data)
    key.update(f"v{GENERATOR_VERSION} n{unique} s{cfg.seed}".encode())
    path = cache_dir / f"negatives-{key.hexdigest()[:24]}.npy" if cache_dir else None
    pool: Digits | None = None
    if path is not None and path.is_file():
        try:
            pool = np.load(path)
        except (OSError, ValueError):
            pool = None  # damaged: made again below
        if pool is not None and pool.shape != (unique, SIZE, SIZE):
            pool = None
    if pool is None:
        pool = make_negatives(unique, digits, labels, fashion, seed=cfg.seed)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            partial = path.with_name(f"{path.stem}.{os.getpid()}.tmp.npy")
            np.save(partial, pool)
            partial.replace(path)  # atomic: a reader never sees half a file
    return np.resize(pool, (count, SIZE, SIZE)) if count else pool[:0]


def training_negatives(
    cfg: TrainConfig, train: Split, settings: Settings
) -> tuple[Digits | None, dict[str, Any]]:
    """The negatives for a run of `cfg` on `train` (None for a ten-output model), and
    what they were made of, for the model card. Fashion-MNIST's train split joins them
    where it can be had; without it the MNIST-made kinds carry on alone."""
    if cfg.outputs == 10:
        return None, {}
    record: dict[str, Any] = {
        "generator_version": GENERATOR_VERSION,
        "from": f"{train.dataset} {train.split} split",
        "kinds": KIND_SHARES,
    }
    try:
        fashion: Digits | None = load_split("fashion-mnist", "train", settings).images
        record["fashion_mnist"] = {"split": "train", "share": FASHION_SHARE}
    except DataError as exc:
        fashion = None
        record["fashion_mnist"] = {"unavailable": str(exc)}
    images = negatives_for(cfg, train.images, train.labels, fashion, settings.negatives_dir)
    record["unique"] = len(np.unique(images.reshape(len(images), -1), axis=0))
    return images, record


def verdict_card(
    cfg: TrainConfig, threshold: float | None, samples: int, negatives: dict[str, Any]
) -> Any:
    """The model card's `verdict`: how a served answer's `is_digit` is decided."""
    if cfg.outputs == 10 or threshold is None:
        return None  # older behaviour: the maximum softmax at the default threshold
    return {
        "score": "1 - p(none of the ten)",
        "threshold": threshold,
        "calibrated": f"accepts {cfg.verdict_accept:.1%} of the MNIST validation digits "
        f"({cfg.val_size} held out of the training split)",
        "accept": cfg.verdict_accept,
        "negatives": negatives | {"samples_per_epoch": samples},
    }


def verdict_test_metrics(
    logits: npt.NDArray[np.float32], threshold: float | None
) -> dict[str, float]:
    """The share of test digits the served model accepts as digits (11 outputs only)."""
    if logits.shape[1] != 11 or threshold is None:
        return {}
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    p_none = shifted[:, NONE_LABEL] / shifted.sum(axis=1)
    return {"test_digits_accepted": float((1 - p_none >= threshold).mean())}
