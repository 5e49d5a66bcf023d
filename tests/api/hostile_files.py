"""Hostile image files, built byte by byte: all-zero PNGs that compress a large picture
into a few kilobytes, TIFFs whose tags have types Pillow's decoder does not expect, and a
small PNG of one long wavy stroke that would cut into thousands of candidate digits."""

from __future__ import annotations

import io
import struct
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

SHORT, LONG, RATIONAL, FLOAT = 3, 4, 5, 11
STRIP_OFFSETS, XMP = 273, 700


def zero_png(folder: Path, side: int) -> Path:
    """An all-zero RGBA PNG of side x side, written to `folder` (4096: ~65 KB, 64 MB decoded)."""
    out = io.BytesIO()
    Image.new("RGBA", (side, side)).save(out, "PNG")
    path = folder / f"zero-{side}.png"
    path.write_bytes(out.getvalue())
    return path


def wavy_line(width: int = 2048) -> bytes:
    """One unbroken wavy stroke across a wide picture, as a PNG of a few KiB."""
    picture = Image.new("L", (width, 160), 0)
    xs = np.arange(0, width, 4)
    ImageDraw.Draw(picture).line(list(zip(xs, 80 + 60 * np.sin(xs / 9), strict=True)), 255, 6)
    out = io.BytesIO()
    picture.save(out, "PNG")
    return out.getvalue()


def _entry(tag: int, kind: int, value: bytes) -> bytes:
    return struct.pack("<HHI", tag, kind, 1) + value.ljust(4, b"\0")


def crafted_tiff(*, strip_offsets_type: int = LONG, xmp_short: bool = False) -> bytes:
    """A 4x4 8-bit grey TIFF (little-endian, one strip) whose StripOffsets tag is of
    `strip_offsets_type` (RATIONAL or FLOAT make Pillow raise TypeError), with an XMP tag
    of type SHORT when `xmp_short` (another TypeError)."""
    count = 10 if xmp_short else 9
    extra_at = 8 + 2 + 12 * count + 4  # after the header and the one IFD
    pixels_at = extra_at + 8
    if strip_offsets_type == RATIONAL:  # the value is elsewhere: numerator, denominator
        strip, extra = struct.pack("<I", extra_at), struct.pack("<II", pixels_at, 1)
    elif strip_offsets_type == FLOAT:
        strip, extra = struct.pack("<f", pixels_at), bytes(8)
    else:
        strip, extra = struct.pack("<I", pixels_at), bytes(8)
    short = lambda n: struct.pack("<H", n)  # noqa: E731
    entries = [
        _entry(256, SHORT, short(4)),  # ImageWidth
        _entry(257, SHORT, short(4)),  # ImageLength
        _entry(258, SHORT, short(8)),  # BitsPerSample
        _entry(259, SHORT, short(1)),  # Compression: none
        _entry(262, SHORT, short(1)),  # PhotometricInterpretation: black is zero
        _entry(STRIP_OFFSETS, strip_offsets_type, strip),
        _entry(277, SHORT, short(1)),  # SamplesPerPixel
        _entry(278, SHORT, short(4)),  # RowsPerStrip
        _entry(279, LONG, struct.pack("<I", 16)),  # StripByteCounts
    ]
    if xmp_short:
        entries.append(_entry(XMP, SHORT, short(5)))
    ifd = struct.pack("<H", len(entries)) + b"".join(entries) + struct.pack("<I", 0)
    return b"II*\0" + struct.pack("<I", 8) + ifd + extra + bytes(range(0, 256, 16))
