"""Export a trained network to ONNX and prove the file computes what torch does.

BatchNorm is folded into the preceding convolution first: at inference it is an
affine map per channel, so the folded graph is smaller and faster with the same
output up to float rounding.
"""

from __future__ import annotations

import copy
import warnings
from pathlib import Path
from typing import cast

import numpy as np
import numpy.typing as npt
import onnxruntime as ort
import torch
from torch import nn

from digitlab.ml.model import Ensemble

OPSET = 18
INPUT_NAME = "image"  # (N, 1, 28, 28) float32 in [0, 1], light ink on black
OUTPUT_NAME = "logits"  # (N, 10), or (N, 11) with "none of the ten" last


class ExportError(Exception):
    """The exported model does not reproduce the torch model."""


def fold_batchnorm(model: nn.Sequential) -> nn.Sequential:
    """A copy of `model` in which every Conv2d -> BatchNorm2d pair is one Conv2d."""
    folded = copy.deepcopy(model).eval()
    layers = list(folded)
    for i in range(len(layers) - 1):
        conv, bn = layers[i], layers[i + 1]
        if not (isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d)):
            continue
        assert bn.running_mean is not None and bn.running_var is not None
        scale = bn.weight.detach() / torch.sqrt(bn.running_var + bn.eps)  # (C_out,)
        bias = conv.bias.detach() if conv.bias is not None else torch.zeros_like(scale)
        fused = copy.deepcopy(conv)
        with torch.no_grad():
            fused.weight.copy_(conv.weight.detach() * scale[:, None, None, None])
            fused.bias = nn.Parameter((bias - bn.running_mean) * scale + bn.bias.detach())
        layers[i], layers[i + 1] = fused, nn.Identity()
    return nn.Sequential(*[layer for layer in layers if not isinstance(layer, nn.Identity)])


def fold_model(model: nn.Module) -> nn.Module:
    """`fold_batchnorm` for a network or for each member of an Ensemble."""
    if isinstance(model, Ensemble):
        return Ensemble([fold_batchnorm(cast(nn.Sequential, m)) for m in model.members])
    return fold_batchnorm(cast(nn.Sequential, model))


def export_onnx(model: nn.Module, path: Path) -> None:
    """Write `model` (on the CPU, eval mode) as ONNX with a dynamic batch axis."""
    model = model.cpu().float().eval()
    example = torch.zeros(2, 1, 28, 28)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the exporter's chatter about deprecations
        torch.onnx.export(
            model,
            (example,),
            str(path),
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}},
            opset_version=OPSET,
            dynamo=False,
        )


def onnx_logits(path: Path, images: npt.NDArray[np.float32], batch: int = 2000) -> np.ndarray:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    out = [
        session.run(None, {INPUT_NAME: images[i : i + batch]})[0]
        for i in range(0, len(images), batch)
    ]
    return np.concatenate(out)


def check_parity(
    torch_logits: npt.NDArray[np.float32],
    onnx_out: npt.NDArray[np.float32],
    labels: npt.NDArray[np.uint8],
    *,
    tolerance: float = 1e-4,
    parity_count: int = 1000,
) -> dict[str, float]:
    """Max abs logit difference on the first `parity_count` images must be within
    `tolerance` (every output, "none of the ten" too), and digit accuracy over all
    images must be identical."""
    if torch_logits.shape[1:] != onnx_out.shape[1:]:
        raise ExportError(f"ONNX outputs {onnx_out.shape[1:]}, torch {torch_logits.shape[1:]}")
    diff = float(np.abs(torch_logits[:parity_count] - onnx_out[:parity_count]).max())
    acc_torch = float((torch_logits[:, :10].argmax(1) == labels).mean())
    acc_onnx = float((onnx_out[:, :10].argmax(1) == labels).mean())
    if diff > tolerance:
        raise ExportError(f"ONNX output differs from torch by {diff:.2e} (limit {tolerance:.0e})")
    if acc_onnx != acc_torch:
        raise ExportError(f"ONNX accuracy {acc_onnx:.4%} differs from torch {acc_torch:.4%}")
    return {"parity_max_abs_diff": diff, "onnx_test_accuracy": acc_onnx}
