"""Training recipes: frozen dataclasses of defaults, overridable from the CLI and
saved with each model so a run can be repeated exactly."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

from digitlab.ml.augment import Augmentation


@dataclass(frozen=True)
class TrainConfig:
    recipe: str = "fast"
    dataset: str = "mnist"
    arch: str = "fast"
    width: int | None = None  # None: the architecture's default
    hidden: int = 0  # >0: an extra dense layer (Linear + ReLU) of this size before the output
    epochs: int = 3
    batch_size: int = 128
    optimizer: str = "sgd"  # "sgd" (Nesterov momentum), "adam" or "adamw"
    lr: float = 0.1  # peak learning rate
    momentum: float = 0.9
    weight_decay: float = 5e-4
    schedule: str = "onecycle"  # "onecycle" or "constant"
    warmup: float = 0.2  # fraction of steps spent warming up (onecycle)
    label_smoothing: float = 0.0
    # Augmentation (digitlab.ml.augment); zero everywhere turns it off. Geometry:
    max_shift: float = 0.0  # pixels
    max_rotate: float = 0.0  # degrees
    max_scale: float = 0.0  # relative, e.g. 0.1 for 0.9..1.1
    max_shear: float = 0.0  # degrees
    elastic: float = 0.0  # largest elastic displacement, pixels
    # ... and how the digit was captured, each the share of images it applies to:
    stroke: float = 0.0  # a thinner or thicker pen
    lowres: float = 0.0  # down to 8-16 px and back up
    blur: float = 0.0
    contrast: float = 0.0  # faint ink, grey background
    noise: float = 0.0
    # The not-a-digit verdict (digitlab.ml.negatives): the share of each epoch's samples
    # that are negatives, taught as an 11th output "none of the ten" (0: ten outputs,
    # as before); and the share of validation digits the calibrated threshold accepts.
    negatives: float = 0.0
    verdict_accept: float = 0.997
    members: int = 1  # >1: an ensemble of networks trained from different seeds
    ema: float = 0.0  # decay of an exponential moving average of the weights; 0: off
    val_size: int = 5000  # held out of the training split for curves and selection
    seed: int = 0
    bf16: bool = True  # bf16 autocast where the hardware has it
    # On a CUDA device: batches this many times `batch_size`, the peak LR times its square
    # root (`for_device`), so that a step gives the GPU real work; 1 trains as on a CPU.
    cuda_batch_scale: int = 4
    # torch.compile mode for the network ("default", "reduce-overhead" = CUDA graphs, ...);
    # "off" until bench/gpu.sh shows its compile time paying for itself.
    compile: str = "off"
    deterministic: bool = True  # on CUDA, cuDNN's deterministic kernels: seed -> same weights
    dry_run: bool = False  # train one batch only: a smoke test
    # Building on what exists (digitlab.ml.finetune): a corrections folder appended to the
    # training images, how much each of its images counts against an MNIST image, and the
    # version whose weights training starts from (None: a fresh init).
    extra: str | None = None
    extra_weight: float = 1.0
    parent: str | None = None

    @property
    def outputs(self) -> int:
        """10 digits, or 11 with "none of the ten" when training on negatives."""
        return 11 if self.negatives > 0 else 10

    def replace(self, **changes: Any) -> TrainConfig:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def for_device(self, device_type: str) -> TrainConfig:
        """This config as it trains on a device of this type ("cuda", "cpu"): on CUDA the
        batch grows `cuda_batch_scale` times and the LR by its square root. The result has
        a scale of 1, so the card it is saved in trains the same anywhere."""
        k = self.cuda_batch_scale
        if device_type != "cuda" or k == 1:
            return self
        return self.replace(batch_size=self.batch_size * k, lr=self.lr * math.sqrt(k),
                            cuda_batch_scale=1)  # fmt: skip

    def augmentation(self) -> Augmentation:
        """The augmentation fields of this config (the same names in both dataclasses)."""
        mine = {f.name for f in dataclasses.fields(self)}
        names = [f.name for f in dataclasses.fields(Augmentation) if f.name in mine]
        return Augmentation(**{name: getattr(self, name) for name in names})


# How people's digits differ from MNIST's (digitlab.ml.augment): slant, shear, a wobbly
# hand, thinner and thicker pens, low-resolution scans, blur, faint ink, grain. Measured
# against the shifted test sets of bench/robustness.py; docs/robustness.md has the table.
ROBUST: dict[str, Any] = {
    "max_shift": 1.5,
    "max_rotate": 10.0,
    "max_scale": 0.1,
    "max_shear": 10.0,
    "elastic": 1.0,
    "stroke": 0.5,
    "lowres": 0.3,
    "blur": 0.2,
    "contrast": 0.1,
    "noise": 0.1,
}

# The share of negatives in each epoch of the served recipes: enough to learn "none of
# the ten", few enough that digit accuracy and training time hold (docs/ood.md).
NEGATIVES = 0.12

RECIPES: dict[str, TrainConfig] = {
    # >= 99.3% test accuracy in well under 30 s on 2 CPU cores, and robust to the shifts.
    # Batch 160 at 0.1 x sqrt(1.25): 11% faster on 2 cores than 128 at 0.1, at the same
    # accuracy, robustness and verdict (docs/benchmarks.md); 256 lost accuracy.
    "fast": TrainConfig(
        recipe="fast",
        arch="fast",
        epochs=2,
        batch_size=160,
        lr=0.1118,
        negatives=NEGATIVES,
        **ROBUST,
    ),
    # >= 99.65%: a deeper net, more epochs, an EMA of the weights (~7 min on 2 cores).
    "best": TrainConfig(
        recipe="best",
        arch="best",
        epochs=18,
        batch_size=128,
        lr=0.1,
        label_smoothing=0.1,
        ema=0.999,
        negatives=NEGATIVES,
        **(ROBUST | {"max_shift": 2.0}),
    ),
    # The fast recipe as it was until 2026-12 (shifts only): the robustness baseline.
    "plain": TrainConfig(
        recipe="plain", arch="fast", epochs=2, batch_size=128, lr=0.1, max_shift=1.5
    ),
    # The reference project's Keras recipe, reimplemented: the benchmark baseline.
    "reference": TrainConfig(
        recipe="reference",
        arch="reference",
        epochs=5,
        batch_size=128,
        optimizer="adam",
        lr=1e-3,
        weight_decay=0.0,
        schedule="constant",
        val_size=6000,  # Keras validation_split=0.1
        bf16=False,
        cuda_batch_scale=1,  # the baseline trains as the reference project did, anywhere
    ),
    # Fine-tuning a parent version (`digitlab train --from VERSION` picks it by default):
    # the architecture comes from the parent; a few epochs at a tenth of fast's peak LR, so
    # the parent's weights are adjusted rather than retrained; fast's augmentation, so the
    # child stays as robust as its parent.
    "finetune": TrainConfig(
        recipe="finetune",
        arch="fast",
        epochs=2,
        batch_size=128,
        lr=0.01,
        negatives=NEGATIVES,
        **ROBUST,
    ),
}


def get_recipe(name: str) -> TrainConfig:
    if name not in RECIPES:
        raise ValueError(f"unknown recipe {name!r}; choose from {', '.join(RECIPES)}")
    return RECIPES[name]
