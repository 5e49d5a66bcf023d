"""Augmentation: every transform keeps shape and range, repeats under a seed, does
nothing at strength zero, changes what it should, and leaves the digit readable."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pytest
import torch
import torch.nn.functional as F  # noqa: N812
from hypothesis import given, settings
from hypothesis import strategies as st

from digitlab.data import Split
from digitlab.inference.runtime import OnnxClassifier
from digitlab.ml.augment import (
    Augmentation,
    augment,
    random_affine,
    random_blur,
    random_contrast,
    random_lowres,
    random_noise,
    random_stroke,
)
from digitlab.ml.recipes import get_recipe
from digitlab.registry.versions import ModelVersion

Transform = Callable[[torch.Tensor, torch.Generator], torch.Tensor]

TRANSFORMS: dict[str, Transform] = {
    "affine": lambda x, g: random_affine(
        x, g, max_shift=2, max_rotate=15, max_scale=0.15, max_shear=15, elastic=1.5
    ),
    "stroke": lambda x, g: random_stroke(x, g, 1.0),
    "lowres": lambda x, g: random_lowres(x, g, 1.0),
    "blur": lambda x, g: random_blur(x, g, 1.0),
    "contrast": lambda x, g: random_contrast(x, g, 1.0),
    "noise": lambda x, g: random_noise(x, g, 1.0),
    "all": lambda x, g: augment(x, g, get_recipe("fast").augmentation()),
}


def batch(mnist: Split, n: int = 64, start: int = 0) -> torch.Tensor:
    images = mnist.images[start : start + n]
    return torch.from_numpy(images.astype(np.float32) / 255).unsqueeze(1)  # (B, 1, 28, 28)


@pytest.mark.parametrize("name", sorted(TRANSFORMS))
@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), start=st.integers(0, 9000))
def test_shape_range_and_determinism(name: str, seed: int, start: int, mnist_test: Split) -> None:
    x = batch(mnist_test, 32, start)
    transform = TRANSFORMS[name]
    a = transform(x, torch.Generator().manual_seed(seed))
    b = transform(x, torch.Generator().manual_seed(seed))
    assert a.shape == x.shape and a.dtype == x.dtype
    assert float(a.min()) >= 0.0 and float(a.max()) <= 1.0
    assert torch.equal(a, b)  # the same seed, the same batch
    # Other seeds, other batches (lowres picks one of a few sizes a batch, so some
    # seeds can agree with this one; five cannot all).
    others = [transform(x, torch.Generator().manual_seed(seed + k)) for k in range(1, 6)]
    assert any(not torch.equal(a, c) for c in others)
    assert torch.equal(x, batch(mnist_test, 32, start))  # the input is left alone


def test_zero_strength_is_the_identity(mnist_test: Split) -> None:
    x = batch(mnist_test)
    g = torch.Generator().manual_seed(0)
    assert not Augmentation().active
    assert torch.equal(augment(x, g, Augmentation()), x)
    for transform in (random_stroke, random_lowres, random_blur, random_contrast, random_noise):
        assert torch.equal(transform(x, g, 0.0), x), transform.__name__


def test_probability_is_the_share_of_images_changed(mnist_test: Split) -> None:
    x = batch(mnist_test, 1000)
    changed = (random_blur(x, torch.Generator().manual_seed(3), 0.3) != x).flatten(1).any(1)
    assert 0.25 <= float(changed.float().mean()) <= 0.35


def ink(x: torch.Tensor) -> float:
    return float((x > 0.5).float().sum())


def test_stroke_makes_pens_thinner_and_thicker(mnist_test: Split) -> None:
    x = batch(mnist_test, 500)
    out = random_stroke(x, torch.Generator().manual_seed(0), 1.0)
    per_image = (out > 0.5).flatten(1).sum(1).float() / (x > 0.5).flatten(1).sum(1).float()
    assert float(per_image.min()) < 0.8 and float(per_image.max()) > 1.3


def test_lowres_removes_detail(mnist_test: Split) -> None:
    x = batch(mnist_test, 200)
    out = random_lowres(x, torch.Generator().manual_seed(0), 1.0, sizes=(8, 8))

    # An 8x8 image brought back up has (almost) no energy left at the finest scale.
    def detail(t: torch.Tensor) -> float:
        return float((t[..., 1:, :] - t[..., :-1, :]).abs().mean())

    assert detail(out) < 0.7 * detail(x)
    # and its brightest pixel is where the original's was: the service stretches so too.
    assert torch.allclose(out.amax((2, 3)), x.amax((2, 3)), atol=1e-5)


def test_labels_survive_the_fast_recipe_augmentation(
    trained_fast_model: ModelVersion, mnist_test: Split
) -> None:
    """The recipe's augmentation changes how a digit looks, not which digit it is: the
    served model still reads nearly all augmented test digits as their labels."""
    x = batch(mnist_test, 2000)
    out = augment(x, torch.Generator().manual_seed(0), get_recipe("fast").augmentation())
    logits = OnnxClassifier(trained_fast_model).logits(out.numpy().astype(np.float32))
    # The digit answered is the best of the ten (an 11th output is the not-a-digit verdict).
    agree = float((logits[:, :10].argmax(1) == mnist_test.labels[:2000]).mean())
    assert agree >= 0.95, agree


DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.mark.parametrize("device", DEVICES)
def test_augmentation_runs_where_the_images_are(device: str, mnist_test: Split) -> None:
    """The recipe's augmentation with a generator on the images' device (a CPU one for
    the per-batch choices): the images stay there, keep shape and range, and a seed
    gives the same batch on that device, another seed another batch."""
    x = batch(mnist_test, 256).to(device)
    aug = get_recipe("fast").augmentation()

    def run(seed: int) -> torch.Tensor:
        generator = torch.Generator(device).manual_seed(seed)
        return augment(x, generator, aug, host=torch.Generator().manual_seed(seed))

    a, b, other = run(7), run(7), run(8)
    assert a.device == x.device and a.shape == x.shape and a.dtype == x.dtype
    assert float(a.min()) >= 0.0 and float(a.max()) <= 1.0
    assert torch.equal(a, b)
    assert not torch.equal(a, other)


@pytest.mark.parametrize(
    "transform", [random_stroke, random_lowres, random_blur, random_contrast, random_noise]
)
def test_whole_batch_path_gives_the_same_images(transform: Callable[..., torch.Tensor]) -> None:
    """Off the CPU the capture transforms compute on the whole batch and select (no host
    sync); on the same draws that is exactly the chosen-images-only path."""
    x = torch.rand(300, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    sparse = transform(x, torch.Generator().manual_seed(5), 0.4, dense=False)
    dense = transform(x, torch.Generator().manual_seed(5), 0.4, dense=True)
    assert not torch.equal(sparse, x)
    assert torch.equal(sparse, dense)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_augmentation_never_waits_for_the_gpu(mnist_test: Split) -> None:
    """With a CUDA generator and a host one, no transform reads a value back."""
    x = batch(mnist_test, 256).cuda()
    generator = torch.Generator("cuda").manual_seed(0)
    torch.cuda.set_sync_debug_mode("error")
    try:
        augment(x, generator, get_recipe("best").augmentation(), host=torch.Generator())
    finally:
        torch.cuda.set_sync_debug_mode("default")


def test_affine_samples_where_affine_grid_would(mnist_test: Split) -> None:
    """The grid built from six factors per image is F.affine_grid's for the same matrix:
    rotation, shear, scale, aspect and shift drawn in that order from the generator."""
    x = batch(mnist_test, 64)
    limits = {"max_shift": 2.0, "max_rotate": 15.0, "max_scale": 0.2, "max_shear": 10.0}
    mine = random_affine(x, torch.Generator().manual_seed(3), **limits)

    draws = torch.Generator().manual_seed(3)
    b, _, h, w = x.shape

    def uniform(limit: float) -> torch.Tensor:
        return (torch.rand(b, generator=draws) * 2 - 1) * limit

    angle, shear = uniform(math.radians(15.0)), uniform(math.radians(10.0))
    scale, aspect = 1 + uniform(0.2), 1 + uniform(0.1)
    tx, ty = uniform(2 * 2.0 / w), uniform(2 * 2.0 / h)
    sx, sy = 1 / (scale * aspect), aspect / scale
    cos, sin, tan = angle.cos(), angle.sin(), shear.tan()
    theta = torch.stack(
        [
            torch.stack([cos * sx, (cos * tan - sin) * sy, tx], 1),
            torch.stack([sin * sx, (sin * tan + cos) * sy, ty], 1),
        ],
        1,
    )
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    theirs = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    assert not torch.allclose(mine, x, atol=0.1)
    assert torch.allclose(mine, theirs, atol=1e-5)
