"""A folder of people's corrections as training data, in the MNIST file format.

Written by `digitlab feedback export DIR`, read by `digitlab train --extra DIR`:

    DIR/train-images-idx3-ubyte.gz    DIR/train-labels-idx1-ubyte.gz     may be trained on
    DIR/heldout-images-idx3-ubyte.gz  DIR/heldout-labels-idx1-ubyte.gz   never trained on
    DIR/manifest.json                 what each image is, and each file's SHA-256

Which part an image falls in depends on its content only (`part_of`), so an image keeps
its part across exports, databases and filters, and the same image sent twice never lands
on both sides.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import struct
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from digitlab.data.datasets import Split
from digitlab.data.idx import IMAGES_MAGIC, LABELS_MAGIC, DataError, read_images, read_labels

PARTS = ("train", "heldout")
MANIFEST = "manifest.json"
HELDOUT_EVERY = 5  # about one image in five is held out


def part_of(image_sha256: str) -> str:
    """'heldout' for about one image in HELDOUT_EVERY, by the image's SHA-256; else 'train'."""
    return "heldout" if int(image_sha256[:8], 16) % HELDOUT_EVERY == 0 else "train"


def file_names(part: str) -> tuple[str, str]:
    return f"{part}-images-idx3-ubyte.gz", f"{part}-labels-idx1-ubyte.gz"


def idx_bytes(array: npt.NDArray[np.uint8], magic: int) -> bytes:
    """IDX encoding: magic, one big-endian int32 per dimension, the bytes."""
    header = struct.pack(">i", magic) + struct.pack(f">{array.ndim}i", *array.shape)
    return header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()


def write_gz(path: Path, data: bytes) -> str:
    """Gzip with no time stamp (the same data gives the same file); returns its SHA-256."""
    packed = gzip.compress(data, mtime=0)
    path.write_bytes(packed)
    return hashlib.sha256(packed).hexdigest()


def write_part(
    folder: Path, part: str, images: npt.NDArray[np.uint8], labels: npt.NDArray[np.uint8]
) -> dict[str, str]:
    """The part's two IDX files; returns file name -> SHA-256."""
    images_name, labels_name = file_names(part)
    return {
        images_name: write_gz(
            folder / images_name, idx_bytes(images.reshape(-1, 28, 28), IMAGES_MAGIC)
        ),
        labels_name: write_gz(folder / labels_name, idx_bytes(labels.reshape(-1), LABELS_MAGIC)),
    }


def read_manifest(folder: Path) -> dict[str, Any]:
    """The manifest, after checking every file it lists against its SHA-256."""
    path = folder / MANIFEST
    if not path.is_file():
        raise DataError(f"{folder}: no {MANIFEST}; make the folder with `digitlab feedback export`")
    try:
        manifest: dict[str, Any] = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: unreadable ({exc})") from None
    for name, expected in manifest.get("files", {}).items():
        file = folder / name
        if not file.is_file():
            raise DataError(f"{folder}: {name} is missing")
        actual = hashlib.sha256(file.read_bytes()).hexdigest()
        if actual != expected:
            raise DataError(
                f"{file}: SHA-256 {actual[:12]}... is not the manifest's {expected[:12]}..."
            )
    return manifest


def load_part(folder: Path, part: str) -> Split:
    """One part of an exported folder as a Split (dataset 'corrections'), files verified."""
    if part not in PARTS:
        raise ValueError(f"part must be one of {PARTS}, not {part!r}")
    manifest = read_manifest(folder)
    images_name, labels_name = file_names(part)
    images = read_images(folder / images_name)
    labels = read_labels(folder / labels_name)
    if len(images) != len(labels):
        raise DataError(f"{folder}: {len(images)} {part} images but {len(labels)} labels")
    files = manifest.get("files", {})
    checksums = {name: files[name] for name in (images_name, labels_name) if name in files}
    return Split("corrections", part, images, labels, checksums)
