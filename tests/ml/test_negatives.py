"""The not-a-digit verdict's model side: the negatives training makes, the 11th output
through training and ONNX export, the calibrated threshold in the card, and a real
trained `fast` model refusing blank paper and noise while accepting MNIST's digits."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from digitlab.config import Settings
from digitlab.data import Split
from digitlab.evaluation.shifts import png
from digitlab.inference.predictor import Predictor
from digitlab.inference.preprocess import image_to_digit
from digitlab.inference.runtime import OnnxClassifier
from digitlab.inference.verdict import DEFAULT_THRESHOLD, split_outputs, verdict_threshold
from digitlab.ml import negatives
from digitlab.ml import verdict as training
from digitlab.ml.finetune import load_parent, prepare
from digitlab.ml.pipeline import train_and_register
from digitlab.ml.recipes import RECIPES, get_recipe
from digitlab.registry import versions as registry
from digitlab.registry.versions import ModelVersion


def test_negatives_are_mnist_shaped_pictures_the_same_for_a_seed(mnist_train: Split) -> None:
    digits, labels = mnist_train.images[:500], mnist_train.labels[:500]
    fashion = 255 - mnist_train.images[500:600]  # any 28x28 pictures will do here
    made = negatives.make_negatives(300, digits, labels, fashion, seed=3)
    assert made.shape == (300, 28, 28) and made.dtype == np.uint8
    inked = made.reshape(300, -1).max(1) > 0
    assert inked.mean() > 0.8  # blank paper comes out blank (all zero); the rest has ink
    assert (made.reshape(300, -1).max(1)[inked] == 255).all()  # stretched like an upload
    assert np.array_equal(made, negatives.make_negatives(300, digits, labels, fashion, seed=3))
    assert not np.array_equal(made, negatives.make_negatives(300, digits, labels, fashion, seed=4))
    # Laid out as preprocessing lays out an upload: never a copy of a training digit.
    assert not any((made[:, None] == digits[None, :50]).all(axis=(2, 3)).any(axis=1))


def test_laying_out_matches_the_service_on_plain_pictures() -> None:
    rng = np.random.default_rng(0)
    page = negatives.scribble(rng)
    assert page.shape == (112, 112)
    ours, served = negatives.lay_out(page), image_to_digit(png(page))
    # The service also changes a pen far from MNIST's width; the layout is the same.
    assert abs(float(ours.mean()) - float(served.mean())) < 25
    assert negatives.lay_out(np.full((40, 40), 230, np.uint8)).max() == 0  # blank paper


def test_count_cache_and_calibration(mnist_train: Split, tmp_path: Path) -> None:
    cfg = get_recipe("fast").replace(negatives=0.2, val_size=100)
    digits, labels = mnist_train.images[:600], mnist_train.labels[:600]
    assert training.negative_count(0.2, 500) == 125
    first = training.negatives_for(cfg, digits, labels, None, tmp_path)
    assert first.shape == (125, 28, 28) and len(list(tmp_path.glob("negatives-*.npy"))) == 1
    again = training.negatives_for(cfg, digits, labels, None, tmp_path)
    assert np.array_equal(first, again)
    with pytest.raises(ValueError, match="share"):
        training.negative_count(0.6, 100)
    scores = np.linspace(0, 1, 1001).astype(np.float32)
    assert training.calibrate(scores, 0.997) == pytest.approx(0.003, abs=1e-4)
    assert (scores >= training.calibrate(scores, 0.997)).mean() >= 0.997


def test_the_served_recipes_train_on_negatives_and_the_baselines_do_not() -> None:
    assert RECIPES["fast"].outputs == RECIPES["best"].outputs == 11
    assert RECIPES["plain"].outputs == RECIPES["reference"].outputs == 10


def test_eleven_outputs_export_and_the_card_records_a_calibrated_threshold(
    settings: Settings, mnist_test: Split
) -> None:
    cfg = get_recipe("fast").replace(epochs=1, dry_run=True, val_size=2000)
    model = train_and_register(cfg, settings)
    card = json.loads((model.path / registry.CARD_FILE).read_text())
    assert card["onnx"]["outputs"] == 11
    verdict = card["verdict"]
    assert 0.0 <= verdict["threshold"] <= 1.0 and verdict["accept"] == 0.997
    assert verdict["negatives"]["samples_per_epoch"] > 0
    assert verdict["negatives"]["fashion_mnist"] == {"split": "train", "share": 0.25}
    assert card["metrics"]["parity_max_abs_diff"] <= 1e-4
    logits = OnnxClassifier(model).logits(mnist_test.images[:50, None].astype(np.float32) / 255)
    assert logits.shape == (50, 11)
    probs, scores = split_outputs(logits)
    assert probs.shape == (50, 10) and np.allclose(probs.sum(1), 1, atol=1e-5)
    assert scores.shape == (50,) and ((scores >= 0) & (scores <= 1)).all()
    assert verdict_threshold(model) == verdict["threshold"]
    assert verdict_threshold(model, 0.25) == 0.25  # the setting overrides the card
    batch = Predictor(settings.model_dir, threshold=1.0).predict(mnist_test.images[:5])
    assert batch.probabilities.shape == (5, 10) and not batch.is_digit.any()
    # Fine-tuning it keeps the 11th output.
    parent = load_parent(settings.model_dir, model.version)
    assert parent.outputs == 11
    child, _ = prepare(get_recipe("finetune").replace(parent=model.version), settings.model_dir)
    assert child.outputs == 11


def test_a_ten_output_model_falls_back_to_the_maximum_softmax(
    trained_plain: ModelVersion, mnist_test: Split
) -> None:
    assert verdict_threshold(trained_plain) == DEFAULT_THRESHOLD
    batch = Predictor(trained_plain.path.parent).predict(mnist_test.images[:200])
    assert batch.probabilities.shape == (200, 10)
    assert np.array_equal(batch.is_digit, batch.probabilities.max(1) >= DEFAULT_THRESHOLD)


@pytest.fixture
def trained_plain(settings: Settings) -> ModelVersion:
    return train_and_register(get_recipe("plain").replace(dry_run=True), settings)


@pytest.mark.slow
def test_a_trained_fast_model_refuses_blank_paper_and_noise(
    trained_fast_model: ModelVersion, mnist_test: Split
) -> None:
    rng = np.random.default_rng(99)
    pictures = [np.full((64, 64), 245, np.uint8), np.zeros((28, 28), np.uint8)]
    pictures += [np.clip(rng.normal(240, 4, (200, 200)), 0, 255).astype(np.uint8)]
    pictures += [rng.integers(0, 256, (s, s), dtype=np.uint8) for s in (28, 28, 64, 128)]
    pictures += [np.clip(rng.normal(128, 60, (s, s)), 0, 255).astype(np.uint8) for s in (28, 96)]
    seen = np.stack([image_to_digit(png(p)) for p in pictures])
    predictor = Predictor(trained_fast_model.path.parent)
    assert not predictor.predict(seen).is_digit.any()
    digits = predictor.predict(mnist_test.images[:2000])
    assert digits.is_digit.mean() >= 0.99
    assert (np.array(digits.labels) == mnist_test.labels[:2000]).mean() >= 0.98
