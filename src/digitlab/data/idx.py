"""Parse the IDX format of the MNIST files (gzipped or raw) into numpy arrays.

IDX layout: two zero bytes, a type code (0x08 = unsigned byte), the number of
dimensions, then one big-endian int32 per dimension, then the data.
"""

from __future__ import annotations

import gzip
import struct
import zlib
from pathlib import Path

import numpy as np
import numpy.typing as npt

IMAGES_MAGIC = 2051  # 0x00000803: ubyte, 3 dimensions
LABELS_MAGIC = 2049  # 0x00000801: ubyte, 1 dimension
GZIP_MAGIC = b"\x1f\x8b"


class DataError(Exception):
    """A data file is missing, corrupt or not what it claims to be."""


def decompress(raw: bytes, name: str) -> bytes:
    """`raw` gunzipped when it is gzip (by name or by its magic bytes), else as is."""
    if not name.endswith(".gz") and not raw.startswith(GZIP_MAGIC):
        return raw
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as exc:
        raise DataError(f"{name}: not a valid gzip file ({exc})") from exc


def read_bytes(path: Path) -> bytes:
    return decompress(path.read_bytes(), path.name)


def parse_idx(
    data: bytes, *, name: str, magic: int, shape_tail: tuple[int, ...] = ()
) -> npt.NDArray[np.uint8]:
    """Decode IDX bytes, checking magic number, dimensions and length."""
    ndim = magic & 0xFF
    header_len = 4 + 4 * ndim
    if len(data) < header_len:
        raise DataError(f"{name}: truncated: {len(data)} bytes is shorter than the IDX header")
    (found_magic,) = struct.unpack(">i", data[:4])
    if found_magic != magic:
        raise DataError(f"{name}: wrong magic number {found_magic}, expected {magic}")
    dims = struct.unpack(f">{ndim}i", data[4:header_len])
    if dims[1:] != shape_tail:
        raise DataError(f"{name}: dimensions {dims[1:]}, expected {shape_tail}")
    expected = header_len + int(np.prod(dims))
    if len(data) != expected:
        what = "truncated" if len(data) < expected else "has trailing bytes"
        raise DataError(f"{name}: {what}: {len(data)} bytes, expected {expected} for shape {dims}")
    return np.frombuffer(data, dtype=np.uint8, offset=header_len).reshape(dims)


def parse_images(data: bytes, name: str) -> npt.NDArray[np.uint8]:
    """(N, 28, 28) uint8 images from IDX3 bytes."""
    return parse_idx(data, name=name, magic=IMAGES_MAGIC, shape_tail=(28, 28))


def parse_labels(data: bytes, name: str) -> npt.NDArray[np.uint8]:
    """(N,) uint8 labels from IDX1 bytes; each must lie in 0..9."""
    labels = parse_idx(data, name=name, magic=LABELS_MAGIC)
    if labels.size and int(labels.max()) > 9:
        raise DataError(f"{name}: label {int(labels.max())} is outside 0..9")
    return labels


def read_images(path: Path) -> npt.NDArray[np.uint8]:
    return parse_images(read_bytes(path), path.name)


def read_labels(path: Path) -> npt.NDArray[np.uint8]:
    return parse_labels(read_bytes(path), path.name)
