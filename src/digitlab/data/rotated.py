"""A shifted population for proving that corrections help: MNIST training digits turned
30 to 45 degrees counter-clockwise, the way some people slant their digits, which a
model trained on upright MNIST gets wrong about a third of the time.

Made from the training split only (the test split stays the untouched yardstick); two
disjoint index ranges give a population to send and correct and a fresh sample to judge by.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from PIL import Image

from digitlab.data.datasets import Split

DEGREES = (30.0, 45.0)


def rotate(images: npt.NDArray[np.uint8], angles: npt.NDArray[np.float64]) -> npt.NDArray[np.uint8]:
    """(N, 28, 28) digits turned by `angles` degrees counter-clockwise (bilinear)."""
    return np.stack(
        [
            np.asarray(Image.fromarray(img).rotate(float(a), resample=Image.Resampling.BILINEAR))
            for img, a in zip(images, angles, strict=True)
        ]
    )


def sample(train: Split, start: int, stop: int, count: int, seed: int) -> Split:
    """`count` digits from train[start:stop], each turned by a random angle in DEGREES."""
    rng = np.random.default_rng(seed)
    picked = np.sort(rng.choice(np.arange(start, stop), size=count, replace=False))
    angles = rng.uniform(*DEGREES, size=count)
    return Split(
        "mnist-rotated",
        f"train[{start}:{stop}]",
        rotate(train.images[picked], angles),
        train.labels[picked].copy(),
        {},
    )
