"""The networks. Each takes (B, 1, 28, 28) float images in [0, 1], light ink on
black, and returns (B, 10) logits, or (B, 11) with an 11th output "none of the ten"
(trained on negatives: digitlab.ml.negatives). Input normalisation lives inside the model
so the exported ONNX file needs nothing but pixels scaled to [0, 1]."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

MNIST_MEAN = 0.1307
MNIST_STD = 0.3081


class Normalize(nn.Module):
    def __init__(self, mean: float, std: float) -> None:
        super().__init__()
        self.mean = mean
        self.std = std

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


def _channels_last(grad: torch.Tensor) -> torch.Tensor:
    return grad.contiguous(memory_format=torch.channels_last)


class Flatten(nn.Flatten):
    """nn.Flatten whose gradient goes back in its input's layout. Training runs channels
    last, but a flatten's gradient comes back as a plain (NCHW) tensor, and the ReLU and
    BatchNorm backward kernels before it take a slow path on mixed layouts: on 2 CPU cores
    the fast net's last ReLU backward took 2.5x longer, 11% of a training step. Same
    parameters (none) and the same export as nn.Flatten."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        channels_last = x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last)
        if self.training and x.requires_grad and channels_last:
            x.register_hook(_channels_last)  # type: ignore[no-untyped-call]
        return super().forward(x)


def conv_bn(c_in: int, c_out: int, kernel: int = 3, stride: int = 1) -> list[nn.Module]:
    # No conv bias: BatchNorm's shift makes it redundant, and export folds BN away.
    return [
        nn.Conv2d(c_in, c_out, kernel, stride, padding=kernel // 2, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
    ]


def classifier(features: int, hidden: int = 0, outputs: int = 10) -> list[nn.Module]:
    """The output layer, with an optional extra dense layer before it. With hidden=0 it is
    the single Linear every saved model has, so existing state dicts keep their keys."""
    if hidden <= 0:
        return [nn.Linear(features, outputs)]
    return [nn.Linear(features, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, outputs)]


def reference_net(hidden: int = 0, outputs: int = 10) -> nn.Sequential:
    """The reference project's Keras CNN, layer for layer (valid convolutions)."""
    return nn.Sequential(
        Normalize(0.0, 1.0),  # the reference fed raw x / 255
        nn.Conv2d(1, 32, 3),
        nn.ReLU(),
        nn.MaxPool2d(2),  # (B, 32, 13, 13)
        nn.Conv2d(32, 64, 3),
        nn.ReLU(),
        nn.MaxPool2d(2),  # (B, 64, 5, 5)
        Flatten(),
        nn.Dropout(0.5),
        *classifier(64 * 5 * 5, hidden, outputs),
    )


def fast_net(width: int = 32, hidden: int = 0, outputs: int = 10) -> nn.Sequential:
    """Strided convolutions instead of pooling keep the FLOPs low (~3M multiply-adds
    an image), so a 2-core CPU trains it at ~9k images/s."""
    return nn.Sequential(
        Normalize(MNIST_MEAN, MNIST_STD),
        *conv_bn(1, width, kernel=5, stride=2),  # (B, w, 14, 14)
        *conv_bn(width, 2 * width, stride=2),  # (B, 2w, 7, 7)
        *conv_bn(2 * width, 2 * width),  # (B, 2w, 7, 7)
        Flatten(),
        *classifier(2 * width * 7 * 7, hidden, outputs),
    )


def best_net(width: int = 32, hidden: int = 0, outputs: int = 10) -> nn.Sequential:
    """Five conv layers, downsampling by stride rather than pooling (cheaper on a
    CPU for the same accuracy), global max pooling, dropout before the classifier."""
    w = width
    return nn.Sequential(
        Normalize(MNIST_MEAN, MNIST_STD),
        *conv_bn(1, w, kernel=5),  # (B, w, 28, 28)
        *conv_bn(w, w, stride=2),  # (B, w, 14, 14)
        *conv_bn(w, 2 * w),  # (B, 2w, 14, 14)
        *conv_bn(2 * w, 2 * w, stride=2),  # (B, 2w, 7, 7)
        *conv_bn(2 * w, 4 * w),  # (B, 4w, 7, 7)
        nn.AdaptiveMaxPool2d(1),  # (B, 4w, 1, 1)
        Flatten(),
        nn.Dropout(0.2),
        *classifier(4 * w, hidden, outputs),
    )


class Ensemble(nn.Module):
    """Several networks as one: the output is the mean of their log-probabilities,
    a valid logit vector whose softmax is the normalised geometric mean."""

    def __init__(self, members: list[nn.Sequential]) -> None:
        super().__init__()
        self.members = nn.ModuleList(members)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.stack([m(x).float().log_softmax(1) for m in self.members]).mean(0)


# Callable[..., ...]: the reference net has no width to set.
ARCHITECTURES: dict[str, Callable[..., nn.Sequential]] = {
    "reference": reference_net,
    "fast": fast_net,
    "best": best_net,
}


def build_model(
    arch: str, width: int | None = None, hidden: int = 0, outputs: int = 10
) -> nn.Sequential:
    """`outputs`: 10 digits, or 11 with "none of the ten" last."""
    if arch not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {arch!r}; choose from {sorted(ARCHITECTURES)}")
    if hidden < 0:
        raise ValueError(f"hidden must be 0 (no extra layer) or a layer size, not {hidden}")
    if outputs not in (10, 11):
        raise ValueError(f"outputs must be 10 (digits) or 11 (digits and none), not {outputs}")
    factory = ARCHITECTURES[arch]
    if width is None:
        return factory(hidden=hidden, outputs=outputs)
    return factory(width, hidden=hidden, outputs=outputs)
