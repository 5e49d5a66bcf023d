"""A folder of image files (PNG, JPEG, BMP, GIF, WebP, TIFF) turned into 28x28 digits,
through the same conversion the service uses (`digitlab.inference.preprocess`).

digitlab score --folder DIR
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from digitlab.inference.preprocess import ImageError, image_to_digit

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")


class ImageFileError(ValueError):
    """A file that should be an image cannot be read as one."""


@dataclass(frozen=True)
class ImageFile:
    name: str
    image: npt.NDArray[np.uint8]  # (28, 28), light ink on black
    original: bytes  # the file as it was


def decode(data: bytes, name: str) -> npt.NDArray[np.uint8]:
    try:
        return image_to_digit(data)
    except ImageError as exc:
        raise ImageFileError(f"{name}: {exc}") from None


def load_folder(folder: Path) -> list[ImageFile]:
    """Every image file directly in `folder`, by name; refuses the lot if one is broken."""
    return load_files(image_paths(folder))


def image_paths(folder: Path) -> list[Path]:
    """The image files directly in `folder`, sorted by name: the order `digitlab score`
    stores them in, and the order its shards split (the same on every machine)."""
    if not folder.is_dir():
        raise ImageFileError(f"{folder}: not a folder")
    paths = sorted(
        (p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES), key=lambda p: p.name
    )
    if not paths:
        kinds = ", ".join(s.lstrip(".").upper() for s in IMAGE_SUFFIXES)
        raise ImageFileError(f"{folder}: no image files ({kinds})")
    return paths


def load_files(paths: list[Path]) -> list[ImageFile]:
    """Read and decode `paths`, in order; refuses the lot if one is broken."""
    files = []
    for path in paths:
        data = path.read_bytes()
        files.append(ImageFile(path.name, decode(data, str(path)), data))
    return files
