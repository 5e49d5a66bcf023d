"""Training: a one-batch smoke test, determinism, and the fast recipe's accuracy."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from digitlab.data import Split
from digitlab.ml.model import build_model
from digitlab.ml.recipes import RECIPES, get_recipe
from digitlab.ml.train import WeightAverage, fit
from digitlab.registry.versions import ModelVersion


def test_dry_run_trains_one_batch(mnist_train: Split) -> None:
    steps: list[int] = []
    result = fit(
        get_recipe("fast").replace(dry_run=True),
        mnist_train.images,
        mnist_train.labels,
        on_step=steps.append,
    )
    assert steps == [get_recipe("fast").batch_size]
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


def test_weight_average_is_torchs_ema(mnist_train: Split) -> None:
    """The sync-free average computes what AveragedModel (EMA, buffers too) computes."""
    model = build_model("fast", width=4)
    ours = WeightAverage(model, 0.9)
    theirs = AveragedModel(
        model,
        multi_avg_fn=get_ema_multi_avg_fn(0.9),  # type: ignore[no-untyped-call]
        use_buffers=True,
    )
    x = torch.from_numpy(mnist_train.images[:64, None].astype(np.float32) / 255)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    for _ in range(4):
        model(x).logsumexp(1).mean().backward()
        opt.step()
        ours.update(model)
        theirs.update_parameters(model)
    a, b = ours.module.state_dict(), theirs.module.state_dict()
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(a["1.weight"], model.state_dict()["1.weight"])


def test_cuda_batches_are_larger_and_recorded() -> None:
    fast = get_recipe("fast")
    on_gpu = fast.for_device("cuda")
    assert (on_gpu.batch_size, on_gpu.lr) == (640, pytest.approx(0.2236))
    assert on_gpu.for_device("cuda") == on_gpu  # the card's config trains the same again
    assert fast.for_device("cpu") == fast
    assert get_recipe("reference").for_device("cuda") == get_recipe("reference")


def test_cpu_training_keeps_the_recipe_and_records_it(mnist_train: Split) -> None:
    cfg = get_recipe("fast").replace(dry_run=True)
    result = fit(cfg, mnist_train.images[:1024], mnist_train.labels[:1024])
    assert result.config == cfg
    with pytest.raises(ValueError, match="unknown compile mode 'fastest'"):
        fit(cfg.replace(compile="fastest"), mnist_train.images[:256], mnist_train.labels[:256])
