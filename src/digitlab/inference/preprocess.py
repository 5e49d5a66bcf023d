"""Any reasonable image to the 28x28 input the model expects, made the way MNIST was made.

MNIST digits are light ink on black, scaled to fit a 20x20 box with their aspect ratio
kept, then placed in a 28x28 field with their centre of mass at its centre. A picture of
a digit (dark ink on a light canvas of a few hundred pixels, anywhere, any size) goes
through the same steps:

1. decode (PNG, JPEG, BMP, GIF, WebP, TIFF; the first frame), honouring EXIF orientation;
2. flatten transparency onto white, convert to grayscale;
3. invert when the background (the border's median) is light;
4. on a noisy picture (a grainy photo or scan), a median filter first;
5. subtract the background level and its noise, stretch the ink to 0..255;
6. crop to the ink's bounding box;
7. scale the crop to fit 20x20, keeping its aspect ratio (anti-aliased);
8. a pen far thinner or thicker than MNIST's brought into its range (`strokes`);
9. place it in 28x28 with its centre of mass at the centre.

A 28x28 picture that already is in MNIST's format (its ink fills a 20-pixel box, centred
by mass) is taken as it is: steps 1-3 only, so an MNIST image passes through unchanged
(inverted back if it was saved inverted). Any other 28x28 picture (a digit filling the
frame or touching its border, a small one in a corner) is normalised like the rest.
Pure numpy and Pillow; no torch.
"""

from __future__ import annotations

import io
import math
import threading
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from typing import Any

import numpy as np
import numpy.typing as npt
from PIL import Image, ImageFilter, ImageOps, UnidentifiedImageError

from digitlab.inference.strokes import THICKEST, change_pen, stroke_width

FORMATS = ("PNG", "JPEG", "BMP", "GIF", "WEBP", "TIFF")
SIZE = 28
BOX = 20
# Limits against decompression bombs, checked from the header before any pixel is decoded.
MAX_SIDE = 8192
MAX_PIXELS = 4096 * 4096
# What is decoded (a JPEG at the reduced scale its draft mode gives) is bounded tighter: a
# digit never needs 4 megapixels, and a 65 KB all-zero 4096x4096 PNG would otherwise
# take 64 MB and a fraction of a second of CPU to decode.
MAX_DECODED_PIXELS = 2048 * 2048
# At most this many pictures of over LARGE_PIXELS are decoded at once in a process: more
# threads than cores decode no faster, and each holds up to ~30 MB while it does.
LARGE_PIXELS = 512 * 512
_large_decodes = threading.BoundedSemaphore(2)
# Larger pictures are shrunk to this before normalising: plenty for a 20x20 result.
WORK_SIDE = 1024
# Ink below this fraction of the strongest ink does not count for the bounding box
# (JPEG ringing, paper texture).
INK_THRESHOLD = 0.2
# Less contrast than this (of 255) between ink and background: a blank picture. Low
# enough for a scan saved as its raw cell counts (0..16, as the classic 8x8 sets are).
MIN_CONTRAST = 8.0
# Background noise (a robust standard deviation, of 255) above which a picture is
# median-filtered before its ink is found, and the smallest side for which that is done
# (a filter would wipe out the strokes of a tiny picture).
NOISY = 6.0
DENOISE_SIDE = 32
# How far (pixels) from the field's centre an MNIST digit's centre of mass may lie: all
# 60,000 training digits are within 0.52.
MNIST_CENTRE_SLACK = 1.5
# At most this many rounds of changing the pen (`strokes.change_pen`).
PEN_ROUNDS = 3

Gray = npt.NDArray[np.float32]
Digit = npt.NDArray[np.uint8]  # (28, 28), light ink on black


class ImageError(ValueError):
    """Bytes that cannot be turned into a digit image; the message says why."""


class ImageTooLargeError(ImageError):
    """An image whose dimensions exceed the limits (a decompression bomb, or a poster)."""


def decode(data: bytes) -> Image.Image:
    """Open and fully decode the first frame of an image, with its EXIF orientation applied."""
    return load(open_image(data))


def open_image(data: bytes) -> Image.Image:
    """The image's header read, its size checked, nothing decoded yet (Image.open is lazy);
    a JPEG set to decode at the smallest scale that still gives WORK_SIDE."""
    if not data:
        raise ImageError("the image is empty (0 bytes)")
    with _image_errors():
        picture = Image.open(io.BytesIO(data), formats=FORMATS)
        check_size(picture.size)
        if picture.format == "JPEG":  # decoded at a reduced scale: 1/2, 1/4 or 1/8
            # The scale that still gives `shrink()` its WORK_SIDE on the longer side.
            scale = WORK_SIDE / max(picture.size)
            picture.draft(picture.mode, (int(picture.width * scale), int(picture.height * scale)))
        check_decoded_size(picture.size)
        return picture


def load(picture: Image.Image) -> Image.Image:
    """The opened picture decoded, turned as its EXIF orientation says."""
    with _image_errors():
        picture.load()
        # In place: otherwise an upright picture is copied, twice its memory at once.
        ImageOps.exif_transpose(picture, in_place=True)
        return picture


def decoded_pixels(data: bytes) -> int:
    """How many pixels `data` decodes to, read from its header; 0 when it cannot be read
    (decoding it says why)."""
    try:
        width, height = open_image(data).size
    except ImageError:
        return 0
    return width * height


@contextmanager
def _image_errors() -> Iterator[None]:
    """Pillow's errors on a file it cannot read, as ImageError."""
    try:
        yield
    except Image.DecompressionBombError:
        raise ImageTooLargeError(
            f"the image is too large; at most {MAX_SIDE} pixels a side and "
            f"{MAX_PIXELS // 1_000_000} megapixels"
        ) from None
    except UnidentifiedImageError:
        kinds = ", ".join(FORMATS)
        raise ImageError(f"not an image file that can be read; send one of: {kinds}") from None
    except (ImageError, MemoryError):
        raise
    except (OSError, ValueError, SyntaxError, EOFError) as exc:
        raise ImageError(f"a broken or truncated image file ({exc})") from None
    except Exception:
        # A crafted file breaks Pillow in other ways: a TIFF whose StripOffsets are of type
        # RATIONAL, or whose XMP tag is of type SHORT, raises TypeError. Its message is
        # Python's, of no use to the sender.
        raise ImageError("a broken image file: its structure cannot be decoded") from None


def check_size(size: tuple[int, int]) -> None:
    width, height = size
    if width < 1 or height < 1:
        raise ImageError(f"the image has no pixels ({width}x{height})")
    if max(width, height) > MAX_SIDE or width * height > MAX_PIXELS:
        raise ImageTooLargeError(
            f"the image is too large: {width}x{height} pixels; the limit is {MAX_SIDE} a side and "
            f"{MAX_PIXELS // 1_000_000} megapixels: scale it down first"
        )


def check_decoded_size(size: tuple[int, int]) -> None:
    width, height = size
    if width * height > MAX_DECODED_PIXELS:
        side = math.isqrt(MAX_DECODED_PIXELS)
        raise ImageTooLargeError(
            f"the image is too large: {width}x{height} pixels, far more than a digit needs; "
            f"at most {MAX_DECODED_PIXELS / 1_000_000:.1f} megapixels (such as {side}x{side}): "
            "scale it down first"
        )


def grayscale(picture: Image.Image) -> Gray:
    """(H, W) float32 in 0..255 as the picture shows it: transparency flattened onto white."""
    if picture.mode in ("I;16", "I;16L", "I;16B", "I;16N", "I", "F"):
        pixels = np.asarray(picture, dtype=np.float32)
        top = 65535.0 if picture.mode.startswith("I;16") else float(pixels.max())
        low = 0.0 if picture.mode.startswith("I;16") else min(0.0, float(pixels.min()))
        scaled = (pixels - low) * (255.0 / (top - low)) if top > low else pixels * 0
        return np.clip(np.nan_to_num(scaled), 0, 255).astype(np.float32)
    if picture.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in picture.info:
        rgba = picture.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        picture = Image.alpha_composite(white, rgba)
    elif picture.mode not in ("L", "RGB", "1", "P"):
        picture = picture.convert("RGB")  # CMYK, YCbCr, LAB...
    return np.asarray(picture.convert("L"), dtype=np.float32)


def shrink(picture: Image.Image) -> Image.Image:
    """A large picture reduced to at most WORK_SIDE a side (JPEG decodes it smaller)."""
    if max(picture.size) <= WORK_SIDE:
        return picture
    scale = WORK_SIDE / max(picture.size)
    size = (max(1, round(picture.width * scale)), max(1, round(picture.height * scale)))
    return picture.resize(size, Image.Resampling.BOX)


def light_ink(gray: Gray) -> Gray:
    """Inverted when the background is light, so ink is light on black as in MNIST."""
    if float(np.median(border_of(gray))) > 127.5:
        return np.float32(255) - gray
    return gray


def border_of(gray: Gray) -> Gray:
    return np.concatenate([gray[0], gray[-1], gray[:, 0], gray[:, -1]])


def background_and_noise(gray: Gray) -> tuple[float, float]:
    """The border's median, and the noise's standard deviation estimated from the
    differences of neighbouring border pixels (robust: a stroke crossing the border,
    or a blocky enlargement, leaves most of those differences at zero)."""
    border = border_of(gray)
    steps = np.abs(np.diff(border))
    return float(np.median(border)), 1.4826 * float(np.median(steps)) / np.sqrt(2)


def denoised(ink: Gray) -> Gray:
    """A median filter when the background is grainy (5x5 when very), the picture as it
    is otherwise."""
    noise = background_and_noise(ink)[1]
    if min(ink.shape) < DENOISE_SIDE or noise <= NOISY:
        return ink
    size = 5 if noise > 4 * NOISY else 3
    return np.asarray(Image.fromarray(ink).filter(ImageFilter.MedianFilter(size)), np.float32)


def ink_box(stretched: Gray) -> tuple[slice, slice]:
    """The bounding box of the ink: pixels of at least INK_THRESHOLD of full strength
    with at least two such neighbours, so that a speck of grain does not count."""
    ink = stretched >= INK_THRESHOLD * 255
    padded = np.pad(ink, 1).astype(np.uint8)
    h, w = ink.shape
    neighbours = sum(
        padded[1 + dy : 1 + dy + h, 1 + dx : 1 + dx + w] for dy in (-1, 0, 1) for dx in (-1, 0, 1)
    )
    # Grain leaves specks of a pixel or two; a stroke has neighbours along it. On a
    # grainy picture (large enough to have been median-filtered) more of them.
    noisy = min(ink.shape) >= DENOISE_SIDE and background_and_noise(stretched)[1] > NOISY
    solid = ink & (neighbours >= (6 if noisy else 3))
    rows, cols = np.nonzero(solid if solid.any() else ink)
    return slice(rows.min(), rows.max() + 1), slice(cols.min(), cols.max() + 1)


def normalise(ink: Gray) -> Digit:
    """Light-ink-on-dark pixels of any size to a centred 28x28 digit (steps 4-9)."""
    ink = denoised(ink)
    background, noise = background_and_noise(ink)
    # What grain is left is not ink. A tiny picture's border is mostly strokes, not
    # grain: its differences say nothing about noise.
    floor = background + (3 * noise if min(ink.shape) >= DENOISE_SIDE else 0.0)
    strongest = float(ink.max())
    if strongest - floor < MIN_CONTRAST:
        return np.zeros((SIZE, SIZE), dtype=np.uint8)  # blank: nothing to centre
    stretched = np.clip((ink - floor) * (255.0 / (strongest - floor)), 0, 255)
    crop = stretched[ink_box(stretched)].astype(np.float32)
    digit = fit_box(crop)
    # A changed pen also changes the ink's extent, and so the scale of the refit: a few
    # rounds, each from the last, until the width is inside MNIST's range. A thick pen
    # is thinned once only: each further erosion takes more of the shape than of the pen
    # (measured: bench/robustness.py, thickness).
    for _ in range(PEN_ROUNDS):
        width = stroke_width(digit)
        repened = change_pen(crop, width, BOX / max(crop.shape))
        if repened is None:
            break
        crop, digit = repened, fit_box(repened)
        if width > THICKEST:
            break
    return centre(digit)


def in_mnist_format(ink: Gray) -> bool:
    """Whether a 28x28 light-ink picture is laid out as MNIST's digits are: the ink's
    longer side 19-20 pixels, no side longer, the centre of mass at the centre."""
    top = float(ink.max())
    if top <= 0:
        return True  # blank stays blank
    rows, cols = np.nonzero(ink >= INK_THRESHOLD * top)
    height, width = rows.max() - rows.min() + 1, cols.max() - cols.min() + 1
    if not 19 <= max(height, width) <= BOX:
        return False
    ys, xs = np.indices(ink.shape)
    total = float(ink.sum())
    cy, cx = float((ys * ink).sum()) / total, float((xs * ink).sum()) / total
    return max(abs(cy - SIZE / 2), abs(cx - SIZE / 2)) <= MNIST_CENTRE_SLACK


def fit_box(crop: Gray) -> Gray:
    """Scaled so its longer side is BOX pixels, keeping the aspect ratio."""
    height, width = crop.shape
    scale = BOX / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    resample = Image.Resampling.BOX if scale < 0.5 else Image.Resampling.BILINEAR
    if scale < 0.5:  # two steps: area averaging, then a smooth final resize
        mid = (size[0] * 2, size[1] * 2)
        crop = np.asarray(Image.fromarray(crop).resize(mid, resample), np.float32)
        resample = Image.Resampling.BILINEAR
    scaled = np.asarray(Image.fromarray(crop).resize(size, resample), np.float32)
    top = float(scaled.max())
    if top <= 0:
        return scaled
    stretched: Gray = np.clip(scaled * (255.0 / top), 0, 255).astype(np.float32)
    return stretched


def centre(digit: Gray) -> Digit:
    """Placed in a 28x28 field so that its centre of mass lands on the field's centre."""
    height, width = digit.shape
    total = float(digit.sum())
    ys, xs = np.indices(digit.shape)
    cy = float((ys * digit).sum()) / total if total else (height - 1) / 2
    cx = float((xs * digit).sum()) / total if total else (width - 1) / 2
    # Where MNIST's own centres of mass lie: (14.0, 14.0) on average in pixel indices,
    # half a pixel past the geometric middle (13.5).
    middle = SIZE / 2
    top, left = round(middle - cy), round(middle - cx)
    field = np.zeros((SIZE, SIZE), dtype=np.float32)
    # Clip the paste to the field: a lopsided digit may overhang a little.
    y0, x0 = max(0, top), max(0, left)
    y1, x1 = min(SIZE, top + height), min(SIZE, left + width)
    field[y0:y1, x0:x1] = digit[y0 - top : y1 - top, x0 - left : x1 - left]
    return np.rint(field).astype(np.uint8)


def to_mnist(picture: Image.Image) -> Digit:
    """(28, 28) uint8, light ink on black, from a decoded picture."""
    if picture.size == (SIZE, SIZE):
        ink = light_ink(grayscale(picture))
        if in_mnist_format(ink):
            return np.rint(ink).astype(np.uint8)
        return normalise(ink)
    return normalise(light_ink(grayscale(shrink(picture))))


def image_to_digit(data: bytes) -> Digit:
    """Image file bytes to the (28, 28) uint8 digit the model sees; ImageError if unusable."""
    picture = open_image(data)
    width, height = picture.size
    with _large_decodes if width * height > LARGE_PIXELS else nullcontext():
        picture = load(picture)
        try:
            return to_mnist(picture)
        except (OSError, ValueError) as exc:  # a mode or layout Pillow decodes but cannot convert
            raise ImageError(f"cannot convert this image ({exc})") from None
        except TypeError:
            raise ImageError("cannot convert this image: its layout cannot be read") from None


def model_input(digits: npt.NDArray[np.uint8]) -> npt.NDArray[np.float32]:
    """(N, 28, 28) uint8 to the model's (N, 1, 28, 28) float32 input in [0, 1]."""
    scaled: npt.NDArray[Any] = digits.reshape(-1, 1, SIZE, SIZE).astype(np.float32) / 255
    return scaled.astype(np.float32)
