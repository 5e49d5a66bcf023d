"""Augmentation of whole batches at once, modelling how people's digits differ from MNIST's.

Every transform takes and returns (B, 1, H, W) float images in [0, 1] (light ink on
black) and draws its randomness from a `torch.Generator` on the images' device (a CPU one
for CPU images, a CUDA one for CUDA images), so a run repeats exactly on a given device and
every random number, field and matrix is made where the images are: no host transfer and
no host sync per batch. Each is a handful of tensor ops over the batch, never a per-image
loop:

- `random_affine`: shift, rotation, scale, aspect and shear (one grid_sample), with an
  optional elastic field folded into the same sampling grid;
- `random_stroke`: thinner or thicker pens (grey-scale erosion / dilation, blended);
- `random_lowres`: a cheap scanner or a thumbnail: down to 8-16 px and back up;
- `random_blur`, `random_contrast`, `random_noise`: focus, faint scans, paper grain.

A transform that applies to a share of the batch computes on that share only on a CPU;
elsewhere it computes on the whole batch and selects, since picking the share out needs
its size on the host (a sync) and the whole batch costs a GPU next to nothing. Both give
the same images. The few choices made once per batch (the low-resolution size) come from
a host generator, `host`, which on a CPU is the same generator.

`augment` applies them in that order with the strengths of an `Augmentation`.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass, fields

import torch
import torch.nn.functional as F  # noqa: N812


@dataclass(frozen=True)
class Augmentation:
    """Strengths of each transform; zero turns one off. Probabilities are per image."""

    max_shift: float = 0.0  # pixels
    max_rotate: float = 0.0  # degrees
    max_scale: float = 0.0  # relative: 0.1 for 0.9..1.1
    max_shear: float = 0.0  # degrees
    elastic: float = 0.0  # largest displacement of the elastic field, in pixels
    stroke: float = 0.0  # probability of a thinner or a thicker pen
    lowres: float = 0.0  # probability of a low-resolution round trip
    lowres_sizes: tuple[int, int] = (8, 16)  # the smallest and largest side it goes down to
    blur: float = 0.0  # probability of a slight blur
    contrast: float = 0.0  # probability of faint ink on a grey background
    noise: float = 0.0  # probability of pixel noise (sigma up to 0.15)

    @property
    def geometric(self) -> bool:
        """Whether the sampling grid moves: any affine part or the elastic field."""
        return any(v > 0 for v in (self.max_shift, self.max_rotate, self.max_scale,
                                   self.max_shear, self.elastic))  # fmt: skip

    @property
    def active(self) -> bool:
        strengths = (getattr(self, f.name) for f in fields(self) if f.name != "lowres_sizes")
        return any(v > 0 for v in strengths)


def _rand(generator: torch.Generator, *shape: int) -> torch.Tensor:
    """Uniform [0, 1) numbers drawn on the generator's own device."""
    return torch.rand(shape, generator=generator, device=generator.device)


def _uniform(b: int, generator: torch.Generator, low: float, high: float) -> torch.Tensor:
    return low + _rand(generator, b) * (high - low)


def _chosen(b: int, generator: torch.Generator, p: float) -> torch.Tensor:
    """(B,) bool: which images a transform of probability `p` applies to."""
    return _rand(generator, b) < p


def _sparse(x: torch.Tensor, dense: bool | None) -> bool:
    """Whether to compute on the chosen images only: on a CPU, unless told otherwise."""
    return x.device.type == "cpu" if dense is None else not dense


def _per_image(mask: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return mask.to(x.device).view(-1, 1, 1, 1)


def _tent(nodes: int, size: int, device: torch.device) -> torch.Tensor:
    """(size, nodes) weights of linear interpolation from `nodes` evenly spaced values
    (the first and last at the edges) to `size` positions."""
    where = torch.linspace(0, nodes - 1, size, device=device).unsqueeze(1)  # (size, 1)
    return (1 - (where - torch.arange(nodes, device=device)).abs()).clamp_min(0)


@functools.cache
def _grid_basis(h: int, w: int, elastic: bool, device: torch.device) -> torch.Tensor:
    """(3, H*W), or (3 + 16, H*W) with the elastic field: each pixel centre's x and y in
    [-1, 1] coordinates (align_corners=False: one pixel is 2 / H), a row of ones for the
    shift, then the bilinear weight of each node of a 4x4 field at each pixel."""
    xs = ((torch.arange(w, device=device) * 2 + 1) / w - 1).repeat(h)
    ys = ((torch.arange(h, device=device) * 2 + 1) / h - 1).repeat_interleave(w)
    rows = [torch.stack([xs, ys, torch.ones_like(xs)])]
    if elastic:
        tents = torch.einsum("yi,xj->ijyx", _tent(4, h, device), _tent(4, w, device))
        rows.append(tents.reshape(16, h * w))
    return torch.cat(rows)


def random_affine(
    x: torch.Tensor,
    generator: torch.Generator,
    *,
    max_shift: float,
    max_rotate: float,
    max_scale: float,
    max_shear: float = 0.0,
    elastic: float = 0.0,
) -> torch.Tensor:
    """Shift (pixels), rotate and shear (degrees), scale each image of (B, 1, H, W) by
    its own random amount; `elastic` > 0 adds a smooth random displacement field of at
    most that many pixels (Simard et al. 2003), in the same grid_sample call."""
    b, _, h, w = x.shape

    def uniform(limit: float) -> torch.Tensor:
        return (_rand(generator, b) * 2 - 1) * limit

    angle = uniform(math.radians(max_rotate))
    shear = uniform(math.radians(max_shear))
    scale = 1 + uniform(max_scale)
    aspect = 1 + uniform(max_scale / 2)  # a narrower or wider hand, independently
    # affine_grid works in [-1, 1] coordinates: one pixel is 2 / H.
    tx, ty = uniform(2 * max_shift / w), uniform(2 * max_shift / h)
    cos, sin, tan = torch.cos(angle), torch.sin(angle), torch.tan(shear)
    sx, sy = 1 / (scale * aspect), aspect / scale
    # Rotation times horizontal shear times scale, mapping output to input coordinates:
    # the (B, 2, 3) matrix F.affine_grid takes. Each image's grid is linear in a few
    # numbers of its own: that matrix's six and the elastic field's 2 x 16 coarse
    # offsets. One matrix product of those numbers with fixed bases (pixel x, pixel y,
    # one, and each coarse node's bilinear tent) makes the whole (B, 2, H*W) grid,
    # several times faster on a CPU than affine_grid's batched product, element-wise
    # sums or interpolating the field.
    where = generator.device
    rows = [cos * sx, (cos * tan - sin) * sy, tx, sin * sx, (sin * tan + cos) * sy, ty]
    coefs = torch.stack(rows, 1).view(b, 2, 3)
    if elastic > 0:
        # Coarse random offsets (4x4), smoothly upsampled: strokes bend, they do not tear.
        coarse = torch.randn((b, 2, 16), generator=generator, device=where) * (elastic / 2)
        coarse = coarse * torch.tensor([2 / w, 2 / h], device=where).view(1, 2, 1)
        coefs = torch.cat([coefs, coarse], 2)
    grid = coefs.view(2 * b, -1) @ _grid_basis(h, w, elastic > 0, where)  # (2B, H*W)
    grid = grid.view(b, 2, h, w).permute(0, 2, 3, 1).to(x.device, x.dtype)  # (B, H, W, 2)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def _subset(mask: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Indices (on x's device) of the images a transform applies to: it computes on those
    only, so a transform for a tenth of the batch costs a tenth."""
    return torch.nonzero(mask).flatten().to(x.device)


def _put(x: torch.Tensor, idx: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
    return x.index_copy(0, idx, values.to(x.dtype))


def _extreme3(x: torch.Tensor, pick: Callable[..., torch.Tensor]) -> torch.Tensor:
    """The 3x3 maximum (dilation) or minimum (erosion) of (B, 1, H, W), outside = 0:
    separable, from shifted views; ~10x faster than max_pool2d with stride 1 on a CPU."""
    p = F.pad(x, (1, 1, 1, 1))
    rows = pick(pick(p[..., :-2], p[..., 1:-1]), p[..., 2:])
    return pick(pick(rows[..., :-2, :], rows[..., 1:-1, :]), rows[..., 2:, :])


def _box3(x: torch.Tensor) -> torch.Tensor:
    """The 3x3 mean of (B, 1, H, W), edges replicated."""
    p = F.pad(x, (1, 1, 1, 1), mode="replicate")
    rows = p[..., :-2] + p[..., 1:-1] + p[..., 2:]
    return (rows[..., :-2, :] + rows[..., 1:-1, :] + rows[..., 2:, :]) / 9


def random_stroke(
    x: torch.Tensor, generator: torch.Generator, p: float, *, dense: bool | None = None
) -> torch.Tensor:
    """A share `p` of the images drawn with a thinner (half of them) or thicker pen: the
    grey-scale erosion or dilation (3x3), blended in by a random amount so the width
    varies continuously rather than in steps of two pixels. `dense`: compute on the
    whole batch (default: off the CPU)."""
    b = x.shape[0]
    applied = _chosen(b, generator, p)
    thicker = _rand(generator, b) < 0.5
    amount = _uniform(b, generator, 0.4, 1.0)
    if p <= 0:
        return x
    if not _sparse(x, dense):
        target = torch.where(
            _per_image(thicker, x), _extreme3(x, torch.maximum), _extreme3(x, torch.minimum)
        )
        weight = amount.to(x.device, x.dtype).view(-1, 1, 1, 1)
        return torch.where(_per_image(applied, x), x + weight * (target - x), x)
    idx = _subset(applied, x)
    if not len(idx):
        return x
    part = x.index_select(0, idx)
    dilated, eroded = _extreme3(part, torch.maximum), _extreme3(part, torch.minimum)
    target = torch.where(_per_image(thicker[applied], part), dilated, eroded)
    weight = amount[applied].to(x.device, x.dtype).view(-1, 1, 1, 1)
    return _put(x, idx, part + weight * (target - part))


def random_lowres(
    x: torch.Tensor,
    generator: torch.Generator,
    p: float,
    sizes: tuple[int, int] = (8, 16),
    *,
    host: torch.Generator | None = None,
    dense: bool | None = None,
) -> torch.Tensor:
    """A share `p` of the images shrunk to a side of `sizes[0]..sizes[1]` pixels (area
    average, as a scanner's cell or a thumbnail does) and brought back up, bilinear or
    nearest. One size per call keeps it to two interpolations over the batch; that size
    and the mode come from `host`, a CPU generator (default: `generator`, which on a GPU
    costs a sync), because they shape the computation. `dense`: compute on the whole
    batch (default: off the CPU)."""
    b, _, h, w = x.shape
    applied = _chosen(b, generator, p)
    host = generator if host is None else host
    side = int(torch.randint(sizes[0], sizes[1] + 1, (1,), generator=host, device=host.device))
    blocky = bool(_rand(host, 1) < 0.25)

    def round_trip(part: torch.Tensor) -> torch.Tensor:
        small = F.adaptive_avg_pool2d(part, side)
        if blocky:
            up = F.interpolate(small, size=(h, w), mode="nearest")
        else:
            up = F.interpolate(small, size=(h, w), mode="bilinear", align_corners=False)
        # Brightest pixel back to the original's: the service stretches contrast the same way.
        peak = part.amax((2, 3), keepdim=True) / up.amax((2, 3), keepdim=True).clamp_min(1e-6)
        return (up * peak).clamp(0, 1)

    if p <= 0:
        return x
    if not _sparse(x, dense):
        return torch.where(_per_image(applied, x), round_trip(x), x)
    idx = _subset(applied, x)
    return _put(x, idx, round_trip(x.index_select(0, idx))) if len(idx) else x


def random_blur(
    x: torch.Tensor, generator: torch.Generator, p: float, *, dense: bool | None = None
) -> torch.Tensor:
    """A share `p` of the images out of focus: a 3x3 box blur blended in by 50-100%
    (about a Gaussian of sigma 0.5-0.8 px), cheap enough to leave on. `dense`: compute on
    the whole batch (default: off the CPU)."""
    b = x.shape[0]
    applied = _chosen(b, generator, p)
    amount = _uniform(b, generator, 0.5, 1.0)
    if p <= 0:
        return x
    if not _sparse(x, dense):
        weight = amount.to(x.device, x.dtype).view(-1, 1, 1, 1)
        return torch.where(_per_image(applied, x), x + weight * (_box3(x) - x), x)
    idx = _subset(applied, x)
    if not len(idx):
        return x
    part = x.index_select(0, idx)
    blurred = _box3(part)
    weight = amount[applied].to(x.device, x.dtype).view(-1, 1, 1, 1)
    return _put(x, idx, part + weight * (blurred - part))


def random_contrast(
    x: torch.Tensor, generator: torch.Generator, p: float, *, dense: bool | None = None
) -> torch.Tensor:
    """A share `p` of the images as a faint scan: ink at 40-100% strength with a gamma
    of 0.6..1.6 (a soft or a hard pen edge) over a background of up to 20% grey.
    `dense`: compute on the whole batch (default: off the CPU)."""
    b = x.shape[0]
    applied = _chosen(b, generator, p)
    ink, gamma, background = (
        _uniform(b, generator, low, high).to(x.device, x.dtype).view(-1, 1, 1, 1)
        for low, high in ((0.4, 1.0), (0.6, 1.6), (0.0, 0.2))
    )
    if p <= 0:
        return x
    if not _sparse(x, dense):
        faint = background + (1 - background) * ink * x.clamp(0, 1).pow(gamma)
        return torch.where(_per_image(applied, x), faint, x)
    idx = _subset(applied, x)
    if not len(idx):
        return x
    part, ink, gamma, background = (t.index_select(0, idx) for t in (x, ink, gamma, background))
    return _put(x, idx, background + (1 - background) * ink * part.clamp(0, 1).pow(gamma))


def random_noise(
    x: torch.Tensor, generator: torch.Generator, p: float, *, dense: bool | None = None
) -> torch.Tensor:
    """A share `p` of the images with Gaussian pixel noise of sigma up to 0.15. Noise is
    drawn for the chosen images only (drawing it for all cost more than the rest of the
    transform): the k-th chosen image gets the k-th image's worth of numbers. The whole-
    batch path draws a batch's worth and picks each chosen image's share by its rank,
    which needs no count on the host; a generator's first k images' worth of a larger
    draw are the numbers a draw of k gives, so both paths give the same images (the
    generator then stands at a different place). `dense`: compute on the whole batch
    (default: off the CPU)."""
    b = x.shape[0]
    applied = _chosen(b, generator, p)
    sigma = _uniform(b, generator, 0.0, 0.15).to(x.device, x.dtype).view(-1, 1, 1, 1)
    if p <= 0:
        return x

    def draw(n: int) -> torch.Tensor:
        noise = torch.randn((n, *x.shape[1:]), generator=generator, device=generator.device)
        return noise.to(x.device, x.dtype)

    if not _sparse(x, dense):
        rank = (torch.cumsum(applied, 0) - 1).clamp_min(0).to(x.device)
        noisy = (x + draw(b).index_select(0, rank) * sigma).clamp(0, 1)
        return torch.where(_per_image(applied, x), noisy, x)
    idx = _subset(applied, x)
    if not len(idx):
        return x
    part = x.index_select(0, idx) + draw(len(idx)) * sigma.index_select(0, idx)
    return _put(x, idx, part.clamp(0, 1))


def augment(
    x: torch.Tensor,
    generator: torch.Generator,
    aug: Augmentation,
    *,
    host: torch.Generator | None = None,
) -> torch.Tensor:
    """All of `aug`'s transforms, geometry first, the way a digit is written, then
    captured: pen, resolution, focus, contrast, noise. Output stays in [0, 1].
    `generator` lives on x's device; `host` (a CPU generator) makes the per-batch choices
    when that device is not the CPU, so nothing waits on the device (`random_lowres`)."""
    if aug.geometric:
        x = random_affine(
            x,
            generator,
            max_shift=aug.max_shift,
            max_rotate=aug.max_rotate,
            max_scale=aug.max_scale,
            max_shear=aug.max_shear,
            elastic=aug.elastic,
        )
    if aug.stroke > 0:
        x = random_stroke(x, generator, aug.stroke)
    if aug.lowres > 0:
        x = random_lowres(x, generator, aug.lowres, aug.lowres_sizes, host=host)
    if aug.blur > 0:
        x = random_blur(x, generator, aug.blur)
    if aug.contrast > 0:
        x = random_contrast(x, generator, aug.contrast)
    if aug.noise > 0:
        x = random_noise(x, generator, aug.noise)
    return x.clamp(0, 1)
