"""MNIST-style preprocessing: MNIST passes through unchanged, photos of digits on a light
canvas are normalised the way MNIST was made, every supported format works."""

from __future__ import annotations

import io

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from digitlab.data import Split
from digitlab.inference.preprocess import (
    ImageError,
    ImageTooLargeError,
    image_to_digit,
    model_input,
)
from digitlab.inference.runtime import OnnxClassifier
from digitlab.registry.versions import ModelVersion

FORMATS = ["PNG", "JPEG", "BMP", "GIF", "WEBP", "TIFF"]


def encode(picture: Image.Image, fmt: str, **options: object) -> bytes:
    out = io.BytesIO()
    picture.save(out, format=fmt, **options)
    return out.getvalue()


def on_canvas(digit: npt.NDArray[np.uint8], rng: np.random.Generator, fmt: str = "PNG") -> bytes:
    """An MNIST digit as a person would send it: dark ink on a light canvas of a few hundred
    pixels, scaled up 3x to 12x, anywhere on it, on slightly uneven paper."""
    ys, xs = np.nonzero(digit > 0)
    crop = digit[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]
    scale = rng.uniform(3, 12)
    size = (max(1, round(crop.shape[1] * scale)), max(1, round(crop.shape[0] * scale)))
    ink = np.asarray(Image.fromarray(crop).resize(size, Image.Resampling.BICUBIC), np.float32)
    height = int(rng.integers(size[1] + 10, size[1] + 300))
    width = int(rng.integers(size[0] + 10, size[0] + 300))
    paper = rng.uniform(215, 255) + rng.normal(0, 3, (height, width))
    top = int(rng.integers(0, height - size[1]))
    left = int(rng.integers(0, width - size[0]))
    region = paper[top : top + size[1], left : left + size[0]]
    paper[top : top + size[1], left : left + size[0]] = region * (1 - np.clip(ink, 0, 255) / 255)
    picture = Image.fromarray(np.clip(paper, 0, 255).astype(np.uint8))
    return encode(picture, fmt, **({"quality": 90} if fmt == "JPEG" else {}))


def test_mnist_passes_through_unchanged(mnist_test: Split) -> None:
    for fmt in ("PNG", "BMP", "TIFF", "GIF", "WEBP"):
        for k in range(5):
            image = mnist_test.images[k]
            options = {"lossless": True} if fmt == "WEBP" else {}
            data = encode(Image.fromarray(image), fmt, **options)
            assert np.array_equal(image_to_digit(data), image), fmt
            inverted = encode(Image.fromarray(255 - image), fmt, **options)
            assert np.array_equal(image_to_digit(inverted), image), fmt


def test_large_canvas_is_centred_like_mnist(mnist_test: Split) -> None:
    rng = np.random.default_rng(0)
    digit = image_to_digit(on_canvas(mnist_test.images[0], rng))
    ys, xs = np.nonzero(digit > 50)
    assert ys.max() - ys.min() <= 20 and xs.max() - xs.min() <= 20  # fits the 20x20 box
    assert max(ys.max() - ys.min(), xs.max() - xs.min()) >= 17  # and fills it
    mass = digit.astype(float) / digit.sum()
    cy, cx = (np.indices(digit.shape) * mass).sum(axis=(1, 2))
    assert abs(cy - 14) <= 0.6 and abs(cx - 14) <= 0.6  # where MNIST's lie
    assert digit[:2].max() == 0 and digit[:, :2].max() == 0  # black border, as MNIST
    assert digit.max() == 255


def test_exif_orientation_and_transparency(mnist_test: Split) -> None:
    upright = Image.fromarray(255 - np.kron(mnist_test.images[0], np.ones((8, 8), np.uint8)))
    expected = image_to_digit(encode(upright, "PNG"))
    rotated = upright.transpose(Image.Transpose.ROTATE_90)  # stored sideways...
    exif = Image.Exif()
    exif[0x0112] = 6  # ...with the tag that says "rotate 90 clockwise to view"
    assert np.array_equal(image_to_digit(encode(rotated, "PNG", exif=exif)), expected)
    assert not np.array_equal(image_to_digit(encode(rotated, "PNG")), expected)
    # Black ink on a transparent background (a canvas export): flattened onto white.
    alpha = np.kron(mnist_test.images[0], np.ones((8, 8), np.uint8))
    rgba = np.zeros((*alpha.shape, 4), np.uint8)
    rgba[..., 3] = alpha
    assert np.abs(image_to_digit(encode(Image.fromarray(rgba), "PNG")).astype(int)
                  - expected).mean() < 3  # fmt: skip


def test_refusals() -> None:
    with pytest.raises(ImageError, match="empty"):
        image_to_digit(b"")
    with pytest.raises(ImageError, match="PNG"):
        image_to_digit(b"plain text")
    with pytest.raises(ImageTooLargeError, match="9000x10"):
        image_to_digit(encode(Image.new("L", (9000, 10)), "PNG"))


def test_a_blank_image_is_a_blank_digit() -> None:
    assert image_to_digit(encode(Image.new("L", (300, 200), 240), "PNG")).max() == 0


MODES = {
    "PNG": ["L", "RGB", "RGBA", "LA", "P", "1", "I;16"],
    "JPEG": ["L", "RGB", "CMYK"],
    "BMP": ["L", "RGB", "P", "1"],
    "GIF": ["L", "P"],
    "WEBP": ["RGB", "RGBA"],
    "TIFF": ["L", "RGB", "RGBA", "CMYK", "1", "I;16", "F"],
}


@st.composite
def pictures(draw: st.DrawFn) -> bytes:
    fmt = draw(st.sampled_from(FORMATS))
    mode = draw(st.sampled_from(MODES[fmt]))
    width, height = draw(st.integers(1, 120)), draw(st.integers(1, 120))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    channels = len(Image.new(mode if mode not in ("I;16", "F", "1") else "L", (1, 1)).getbands())
    pixels = rng.integers(0, 256, (height, width, channels), dtype=np.uint8)
    base = Image.fromarray(pixels[..., 0] if channels == 1 else pixels)
    picture = base if mode in ("L", "RGB", "RGBA") else base.convert(mode)
    return encode(picture, fmt)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pictures())
def test_any_valid_image_becomes_a_model_input(data: bytes) -> None:
    digit = image_to_digit(data)
    assert digit.shape == (28, 28) and digit.dtype == np.uint8
    x = model_input(digit[None])
    assert x.shape == (1, 1, 28, 28) and x.dtype == np.float32
    assert np.isfinite(x).all() and x.min() >= 0 and x.max() <= 1


def test_digits_on_a_large_canvas_are_recognised_as_well_as_mnist(
    trained_fast_model: ModelVersion, mnist_test: Split
) -> None:
    """>= 98% on 1,000 MNIST test digits rendered as dark ink on a light canvas."""
    rng = np.random.default_rng(1)
    picks = rng.choice(len(mnist_test.labels), size=1000, replace=False)
    formats = ["PNG", "JPEG"]
    digits = np.stack([
        image_to_digit(on_canvas(mnist_test.images[k], rng, formats[n % 2]))
        for n, k in enumerate(picks)
    ])  # fmt: skip
    classifier = OnnxClassifier(trained_fast_model, threads=2)
    labels = mnist_test.labels[picks]
    rendered = (classifier.probabilities(digits).argmax(axis=1) == labels).mean()
    original = (classifier.probabilities(mnist_test.images[picks]).argmax(axis=1) == labels).mean()
    print(f"accuracy: original {original:.2%}, rendered on a canvas {rendered:.2%}")
    assert rendered >= 0.98, (rendered, original)
