"""Random affine augmentation of whole batches at once (one grid_sample call)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F  # noqa: N812


def random_affine(
    x: torch.Tensor,
    generator: torch.Generator,
    *,
    max_shift: float,
    max_rotate: float,
    max_scale: float,
) -> torch.Tensor:
    """Shift (pixels), rotate (degrees) and scale each image of (B, 1, H, W) by its own
    random amount. Sampling happens on the CPU generator so runs repeat exactly."""
    b, _, h, _ = x.shape

    def uniform(limit: float) -> torch.Tensor:
        return (torch.rand(b, generator=generator) * 2 - 1) * limit

    angle = uniform(math.radians(max_rotate))
    scale = 1 + uniform(max_scale)
    # affine_grid works in [-1, 1] coordinates: one pixel is 2 / H.
    tx, ty = uniform(2 * max_shift / h), uniform(2 * max_shift / h)
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack([torch.stack([cos, -sin, tx], 1), torch.stack([sin, cos, ty], 1)], 1).to(
        x.device, x.dtype
    )  # (B, 2, 3)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
