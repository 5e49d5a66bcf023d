"""The IDX parser refuses anything that is not exactly a well-formed file."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest

from digitlab.data.idx import DataError, parse_images, parse_labels, read_images, read_labels


def idx_images(n: int, rows: int = 28, cols: int = 28, magic: int = 2051) -> bytes:
    pixels = np.arange(n * rows * cols, dtype=np.uint8).tobytes()
    return struct.pack(">iiii", magic, n, rows, cols) + pixels


def idx_labels(labels: list[int], magic: int = 2049) -> bytes:
    return struct.pack(">ii", magic, len(labels)) + bytes(labels)


def test_reads_images_and_labels_raw_and_gzipped(tmp_path: Path) -> None:
    raw = tmp_path / "imgs-idx3-ubyte"
    raw.write_bytes(idx_images(3))
    gz = tmp_path / "imgs-idx3-ubyte.gz"
    gz.write_bytes(gzip.compress(idx_images(3)))
    a, b = read_images(raw), read_images(gz)
    assert a.shape == (3, 28, 28) and a.dtype == np.uint8
    assert np.array_equal(a, b)
    assert a[0, 0, 1] == 1
    lab = tmp_path / "labels-idx1-ubyte"
    lab.write_bytes(idx_labels([7, 2, 1]))
    assert read_labels(lab).tolist() == [7, 2, 1]


def test_wrong_magic_is_refused_with_the_file_name() -> None:
    with pytest.raises(DataError, match=r"t10k.*wrong magic number 2049, expected 2051"):
        parse_images(idx_images(2, magic=2049), "t10k-images")


def test_truncated_data_is_refused() -> None:
    data = idx_images(4)[:-100]
    with pytest.raises(DataError, match=r"x: truncated: .* expected 3152"):
        parse_images(data, "x")


def test_truncated_header_is_refused() -> None:
    with pytest.raises(DataError, match=r"shorter than the IDX header"):
        parse_images(b"\x00\x00\x08", "x")


def test_trailing_bytes_are_refused() -> None:
    with pytest.raises(DataError, match="trailing bytes"):
        parse_labels(idx_labels([1, 2]) + b"\x00", "y")


def test_wrong_image_size_is_refused() -> None:
    with pytest.raises(DataError, match=r"dimensions \(32, 32\), expected \(28, 28\)"):
        parse_images(idx_images(1, 32, 32), "x")


def test_label_outside_0_to_9_is_refused() -> None:
    with pytest.raises(DataError, match=r"label 12 is outside 0\.\.9"):
        parse_labels(idx_labels([1, 12]), "y")


def test_truncated_gzip_is_refused(tmp_path: Path) -> None:
    gz = tmp_path / "imgs.gz"
    gz.write_bytes(gzip.compress(idx_images(50))[:-20])
    with pytest.raises(DataError, match=r"imgs\.gz: not a valid gzip file"):
        read_images(gz)
