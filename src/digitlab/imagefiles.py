"""Image files (PNG, JPEG, BMP, GIF, TIFF) turned into 28x28 uint8 arrays for the model.

`to_mnist` is deliberately simple for now (a later issue brings full MNIST-style
preprocessing; it replaces that one function): flatten transparency onto white, convert
to grayscale, resize the whole picture to 28x28 (Lanczos), and invert when the border is
light, since MNIST digits are light ink on a black background.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
from PIL import Image, ImageOps, UnidentifiedImageError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff")


class ImageFileError(ValueError):
    """A file that should be an image cannot be read as one."""


@dataclass(frozen=True)
class ImageFile:
    name: str
    image: npt.NDArray[np.uint8]  # (28, 28), light ink on black
    original: bytes  # the file as it was


def to_mnist(picture: Image.Image) -> npt.NDArray[np.uint8]:
    """(28, 28) uint8, light ink on black, from any picture Pillow can open."""
    picture = ImageOps.exif_transpose(picture)
    if picture.mode in ("RGBA", "LA", "PA") or "transparency" in picture.info:
        rgba = picture.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        picture = Image.alpha_composite(white, rgba)
    gray = picture.convert("L").resize((28, 28), Image.Resampling.LANCZOS)
    pixels = np.asarray(gray, dtype=np.uint8)
    border = np.concatenate([pixels[0], pixels[-1], pixels[:, 0], pixels[:, -1]])
    if border.mean() > 127:  # dark ink on a light background
        pixels = 255 - pixels
    return np.ascontiguousarray(pixels, dtype=np.uint8)


def decode(data: bytes, name: str) -> npt.NDArray[np.uint8]:
    try:
        with Image.open(io.BytesIO(data)) as picture:
            picture.load()
            return to_mnist(picture)
    except UnidentifiedImageError:
        raise ImageFileError(f"{name}: not an image file Pillow can read") from None
    except (OSError, ValueError) as exc:  # truncated or corrupt data
        raise ImageFileError(f"{name}: a broken image file ({exc})") from None


def load_folder(folder: Path) -> list[ImageFile]:
    """Every image file directly in `folder`, by name; refuses the lot if one is broken."""
    if not folder.is_dir():
        raise ImageFileError(f"{folder}: not a folder")
    paths = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not paths:
        kinds = ", ".join(s.lstrip(".").upper() for s in IMAGE_SUFFIXES)
        raise ImageFileError(f"{folder}: no image files ({kinds})")
    files = []
    for path in paths:
        data = path.read_bytes()
        files.append(ImageFile(path.name, decode(data, str(path)), data))
    return files
