"""Training: a one-batch smoke test, determinism, and the fast recipe's accuracy."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from digitlab.data import Split
from digitlab.ml.recipes import RECIPES, get_recipe
from digitlab.ml.train import fit
from digitlab.registry.versions import ModelVersion


def test_dry_run_trains_one_batch(mnist_train: Split) -> None:
    steps: list[int] = []
    result = fit(
        get_recipe("fast").replace(dry_run=True),
        mnist_train.images,
        mnist_train.labels,
        on_step=steps.append,
    )
    assert steps == [128]
    assert len(result.history) == 1
    assert np.isfinite(result.history[0]["train_loss"])


def small_run(split: Split, seed: int) -> dict[str, torch.Tensor]:
    cfg = get_recipe("fast").replace(epochs=1, seed=seed, val_size=256)
    result = fit(cfg, split.images[:2048], split.labels[:2048])
    return result.model.state_dict()


def test_same_seed_gives_identical_weights(mnist_train: Split) -> None:
    a, b = small_run(mnist_train, 1), small_run(mnist_train, 1)
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_other_seed_gives_other_weights(mnist_train: Split) -> None:
    a, b = small_run(mnist_train, 1), small_run(mnist_train, 2)
    assert not all(torch.equal(a[k], b[k]) for k in a)


def test_unknown_recipe_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown recipe 'slow'; choose from fast, best"):
        get_recipe("slow")


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_recipes_use_known_settings(name: str, mnist_train: Split) -> None:
    cfg = RECIPES[name].replace(dry_run=True)
    result = fit(cfg, mnist_train.images[:1024], mnist_train.labels[:1024])
    assert result.history[0]["train_loss"] > 0


def test_fast_recipe_reaches_99_percent_on_the_test_set(trained_fast_model: ModelVersion) -> None:
    """The behaviour the fast recipe promises (its speed lives in bench/train.py). The
    session's trained model is shared with the API and web tests."""
    metrics = trained_fast_model.card["metrics"]
    assert metrics["test_accuracy"] >= 0.990, metrics
    assert metrics["onnx_test_accuracy"] == metrics["test_accuracy"]
    # The served (ONNX) model's confusion matrix travels in the card.
    cm = np.array(metrics["test_confusion"])
    assert cm.shape == (10, 10) and cm.sum() == 10_000
    assert np.trace(cm) / 10_000 == metrics["onnx_test_accuracy"]
