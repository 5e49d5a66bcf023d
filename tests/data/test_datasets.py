"""Both datasets load through one interface, verified against their checksums."""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import numpy as np
import pytest

from digitlab.config import Settings
from digitlab.data import DataError, Split, load_split
from digitlab.data.catalog import FASHION_MNIST, MNIST
from tests.conftest import require_package

# Published in ../shared/mnist/README.md.
TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def test_mnist_splits_have_the_published_shapes_and_counts(
    mnist_train: Split, mnist_test: Split
) -> None:
    assert mnist_train.images.shape == (60000, 28, 28)
    assert mnist_test.images.shape == (10000, 28, 28)
    assert np.bincount(mnist_train.labels).tolist() == TRAIN_COUNTS
    assert np.bincount(mnist_test.labels).tolist() == TEST_COUNTS
    assert mnist_test.labels[:5].tolist() == [7, 2, 1, 0, 4]  # the canonical first digits
    assert (
        mnist_test.checksums["t10k-images-idx3-ubyte.gz"]
        == MNIST.files["test-images"].content_sha256
    )


def copy_mnist(src: Path, dst: Path) -> Path:
    dst.mkdir(parents=True, exist_ok=True)
    for f in MNIST.files.values():
        shutil.copy(src / f.name, dst / f.name)
        (dst / f.name).chmod(0o644)
    return dst


def test_corrupted_file_is_refused_naming_it(settings: Settings, tmp_path: Path) -> None:
    folder = copy_mnist(settings.data_dir, tmp_path / "mnist")
    target = folder / "t10k-labels-idx1-ubyte.gz"
    content = bytearray(gzip.decompress(target.read_bytes()))
    content[100] = (content[100] + 1) % 10  # one label changed: still a valid IDX file
    target.write_bytes(gzip.compress(bytes(content)))
    with pytest.raises(DataError, match=r"t10k-labels-idx1-ubyte.gz: checksum mismatch"):
        load_split(
            "mnist", "test", settings.model_copy(update={"data_dir": folder}), download=False
        )


def test_uncompressed_files_are_accepted(settings: Settings, tmp_path: Path) -> None:
    folder = tmp_path / "raw"
    folder.mkdir()
    for kind in ("test-images", "test-labels"):
        f = MNIST.files[kind]
        content = gzip.decompress((settings.data_dir / f.name).read_bytes())
        (folder / f.raw_name).write_bytes(content)
    split = load_split(
        "mnist", "test", settings.model_copy(update={"data_dir": folder}), download=False
    )
    assert split.images.shape == (10000, 28, 28)


def test_missing_files_without_download_say_what_to_do(settings: Settings, tmp_path: Path) -> None:
    empty = settings.model_copy(update={"data_dir": tmp_path / "nothing"})
    with pytest.raises(DataError, match=r"not found in .*nothing; run `digitlab data download`"):
        load_split("mnist", "train", empty, download=False)


def test_unknown_dataset_and_split_are_refused(settings: Settings) -> None:
    with pytest.raises(DataError, match=r"unknown dataset 'cifar'"):
        load_split("cifar", "test", settings)
    with pytest.raises(DataError, match=r"unknown split 'val'"):
        load_split("mnist", "val", settings)


def test_fashion_mnist_loads_from_the_debian_package(settings: Settings) -> None:
    require_package(
        settings.fashion_data_dir / FASHION_MNIST.files["test-images"].name, "dataset-fashion-mnist"
    )
    split = load_split("fashion-mnist", "test", settings, download=False)
    assert split.images.shape == (10000, 28, 28)
    assert np.bincount(split.labels).tolist() == [1000] * 10  # Fashion-MNIST is balanced
