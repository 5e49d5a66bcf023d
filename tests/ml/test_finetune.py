"""Building on what exists: extra (corrections) images in the training set only, their
weight, fine-tuning from a parent's weights, and the lineage each leaves in the card."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from digitlab.config import Settings
from digitlab.data import DataError, Split
from digitlab.data import corrections as corrections_module
from digitlab.data.corrections import MANIFEST
from digitlab.ml.export import onnx_logits
from digitlab.ml.finetune import load_parent, prepare, repeat_counts, weighted_extra
from digitlab.ml.pipeline import train_and_register
from digitlab.ml.recipes import get_recipe
from digitlab.ml.train import fit
from digitlab.registry import versions as registry
from tests.utils.corrections import make_corrections

MNIST_FILES = {
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
}


@pytest.fixture
def corrections(tmp_path: Path, mnist_test: Split) -> Path:
    return make_corrections(tmp_path / "corrections", mnist_test, train=30, heldout=10)


@pytest.fixture
def parent(settings: Settings) -> registry.ModelVersion:
    return train_and_register(get_recipe("fast").replace(dry_run=True), settings)


def test_repeat_counts_give_each_image_its_weight_deterministically() -> None:
    assert (repeat_counts(5, 1.0, seed=0) == 1).all()
    assert (repeat_counts(5, 3.0, seed=0) == 3).all()
    counts = repeat_counts(20_000, 2.25, seed=0)
    assert set(np.unique(counts)) == {2, 3}
    assert counts.mean() == pytest.approx(2.25, abs=0.01)
    assert (counts == repeat_counts(20_000, 2.25, seed=0)).all()
    assert (counts != repeat_counts(20_000, 2.25, seed=1)).any()
    below_one = repeat_counts(20_000, 0.5, seed=0)  # about every other image, once
    assert set(np.unique(below_one)) == {0, 1}
    assert below_one.mean() == pytest.approx(0.5, abs=0.01)


def test_weighted_extra_repeats_images_with_their_labels() -> None:
    images = np.arange(3, dtype=np.uint8)[:, None, None] * np.ones((1, 28, 28), np.uint8)
    labels = np.array([7, 8, 9], np.uint8)
    x, y = weighted_extra(images, labels, 2.0, seed=0)
    assert y.tolist() == [7, 7, 8, 8, 9, 9]
    assert x[:, 0, 0].tolist() == [0, 0, 1, 1, 2, 2]


def test_extra_images_join_training_and_the_lineage_names_them(
    settings: Settings, corrections: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    opened: list[str] = []
    real_read_images = corrections_module.read_images

    def spy(path: Path) -> np.ndarray:
        opened.append(path.name)
        return real_read_images(path)

    # Every parse of a corrections part's images goes through this name.
    monkeypatch.setattr(corrections_module, "read_images", spy)
    cfg = get_recipe("fast").replace(dry_run=True, extra=str(corrections), extra_weight=2.0)
    card = train_and_register(cfg, settings).card

    assert opened == ["train-images-idx3-ubyte.gz"]  # never the heldout part
    negatives = card["verdict"]["negatives"]["samples_per_epoch"]
    # MNIST less validation, 30 x 2, and the not-a-digit pictures
    assert card["dataset"]["train_size"] == 55_000 + 60 + negatives
    assert set(card["dataset"]["checksums"]) == MNIST_FILES
    manifest = corrections_module.read_manifest(corrections)
    assert card["lineage"] == {
        "parent": None,
        "overridden": {},
        "extra": {
            "folder": str(corrections),
            "images": 30,
            "weight": 2.0,
            "samples": 60,
            "feedback_ids": list(range(1, 41)),
            "files": {
                name: manifest["files"][name]
                for name in ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz")
            },
        },
    }
    assert card["config"]["extra"] == str(corrections) and card["config"]["extra_weight"] == 2.0


def test_validation_stays_the_datasets_own(
    trained_fast_model: registry.ModelVersion, mnist_train: Split
) -> None:
    """Extra images with every label wrong, many copies: a good model's validation
    accuracy would collapse if any reached the validation split; with the weights left
    as they are (0 epochs) it must not move at all."""
    init = load_parent(trained_fast_model.path.parent, trained_fast_model.version).state_dict
    images, labels = mnist_train.images[:1000], mnist_train.labels[:1000]
    wrong = (mnist_train.labels[1000:1100] + 1) % 10
    cfg = get_recipe("finetune").replace(epochs=0, val_size=200, extra_weight=20.0)
    alone = fit(cfg, images, labels, init=init)
    mixed = fit(cfg, images, labels, extra=(mnist_train.images[1000:1100], wrong), init=init)
    assert mixed.train_size == alone.train_size + 2000
    assert mixed.val_acc == alone.val_acc and alone.val_acc is not None and alone.val_acc > 0.95


def test_fit_needs_epochs_unless_it_starts_from_given_weights(mnist_train: Split) -> None:
    with pytest.raises(ValueError, match="epochs must be >= 1"):
        cfg = get_recipe("fast").replace(epochs=0)
        fit(cfg, mnist_train.images[:256], mnist_train.labels[:256])


def test_zero_epochs_from_a_parent_reproduce_it_and_training_moves_it(
    settings: Settings, parent: registry.ModelVersion, mnist_test: Split
) -> None:
    pixels = mnist_test.images[:200, None].astype(np.float32) / 255
    before = onnx_logits(parent.onnx_path, pixels)

    same = train_and_register(
        get_recipe("finetune").replace(parent=parent.version, epochs=0), settings
    )
    np.testing.assert_allclose(onnx_logits(same.onnx_path, pixels), before, atol=1e-5)
    assert same.card["lineage"]["parent"] == parent.version
    assert same.card["config"]["parent"] == parent.version
    assert same.card["metrics"]["images_per_s"] is None  # no epoch ran

    moved = train_and_register(
        get_recipe("finetune").replace(parent=parent.version, dry_run=True), settings
    )
    assert np.abs(onnx_logits(moved.onnx_path, pixels) - before).max() > 1e-3
    assert moved.card["lineage"]["parent"] == parent.version


def test_the_parent_decides_the_network(settings: Settings, parent: registry.ModelVersion) -> None:
    cfg, sources = prepare(get_recipe("best").replace(parent=parent.version), settings.model_dir)
    assert (cfg.arch, cfg.epochs, cfg.recipe) == ("fast", 18, "best")  # the rest: the recipe's
    assert sources.overridden == {"arch": {"recipe": "best", "parent": "fast"}}
    assert sources.parent is not None and sources.parent.version == parent.version


def test_a_parent_without_weights_or_with_several_networks_is_refused(
    settings: Settings, parent: registry.ModelVersion
) -> None:
    weights = parent.path / "model.pt"
    saved = torch.load(weights, weights_only=True)
    torch.save(saved | {"members": 2}, weights)
    with pytest.raises(registry.RegistryError, match="ensemble of 2 networks"):
        load_parent(settings.model_dir, parent.version)
    weights.unlink()
    with pytest.raises(registry.RegistryError, match=r"has no model\.pt"):
        load_parent(settings.model_dir, parent.version)
    with pytest.raises(registry.RegistryError, match="no model version 'nope'"):
        load_parent(settings.model_dir, "nope")


def test_a_damaged_corrections_folder_is_refused_before_training(
    settings: Settings, corrections: Path
) -> None:
    images = corrections / "train-images-idx3-ubyte.gz"
    images.write_bytes(images.read_bytes()[:-1])
    with pytest.raises(DataError, match="is not the manifest's"):
        prepare(get_recipe("fast").replace(extra=str(corrections)), settings.model_dir)
    (corrections / MANIFEST).unlink()
    with pytest.raises(DataError, match=r"no manifest\.json"):
        prepare(get_recipe("fast").replace(extra=str(corrections)), settings.model_dir)
