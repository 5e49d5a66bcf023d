"""`load_split`: one split of a dataset as verified arrays, its files downloaded first
when they are missing."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from digitlab.config import Settings
from digitlab.data.catalog import SPLITS, dataset_dirs, find_file, get_dataset, verified_content
from digitlab.data.download import ensure_files
from digitlab.data.idx import DataError, parse_images, parse_labels


@dataclass(frozen=True)
class Split:
    dataset: str
    split: str
    images: npt.NDArray[np.uint8]  # (N, 28, 28), light ink on black
    labels: npt.NDArray[np.uint8]  # (N,)
    checksums: dict[str, str]  # file name -> content SHA-256


def load_split(name: str, split: str, settings: Settings, *, download: bool = True) -> Split:
    """Images and labels of one split, verified; missing files are downloaded first."""
    spec = get_dataset(name)
    if split not in SPLITS:
        raise DataError(f"unknown split {split!r}; choose from {', '.join(SPLITS)}")
    if download:
        ensure_files(spec, settings)
    contents = {}
    for part in ("images", "labels"):
        kind = f"{split}-{part}"
        path = find_file(spec, kind, settings)
        if path is None:
            raise DataError(
                f"{spec.files[kind].name} not found in {dataset_dirs(spec, settings)[0]}; "
                "run `digitlab data download` or set DIGITLAB_DATA_DIR"
            )
        contents[part] = (verified_content(path, spec.files[kind]), path.name)
    images = parse_images(*contents["images"])
    labels = parse_labels(*contents["labels"])
    if len(images) != len(labels):
        raise DataError(f"{name}/{split}: {len(images)} images but {len(labels)} labels")
    files = [spec.files[f"{split}-{part}"] for part in ("images", "labels")]
    checksums = {f.name: f.content_sha256 for f in files}
    return Split(name, split, images, labels, checksums)
