"""The training loop: `fit` trains a model from a TrainConfig on uint8 images.

Reads top to bottom: pick the device (and size the batch for it), split off validation,
append any extra images, then per network (`train_member`) build the model (or start from
given weights) and the optimizer and run `train_one_epoch` / `evaluate` per epoch; several
networks (`members` > 1) become one Ensemble.

The whole step stays on the device: the images are uploaded once, as uint8; each epoch's
order and every random number of the augmentation come from a generator on that device;
loss and accuracy are summed there and read once per epoch. Nothing inside an epoch waits
for the host, so a GPU is fed as fast as the host can queue work.
"""

from __future__ import annotations

import copy
import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, cast

import numpy as np
import numpy.typing as npt
import torch
import torch.nn.functional as F  # noqa: N812
from torch import nn

from digitlab.ml.augment import augment
from digitlab.ml.finetune import weighted_extra
from digitlab.ml.model import Ensemble, build_model
from digitlab.ml.negatives import NONE_LABEL
from digitlab.ml.optim import NesterovSGD, StepSchedule
from digitlab.ml.recipes import TrainConfig
from digitlab.ml.verdict import calibrate, negatives_for

EpochCallback = Callable[[dict[str, Any]], None]
StepCallback = Callable[[int], None]
Images = tuple[npt.NDArray[np.uint8], npt.NDArray[np.uint8]]  # (N, 28, 28), (N,)


@dataclass
class FitResult:
    model: nn.Module  # one nn.Sequential, or an Ensemble of them
    history: list[dict[str, Any]] = field(default_factory=list)
    train_seconds: float = 0.0
    val_acc: float | None = None
    device: str = "cpu"
    train_size: int = 0  # samples per epoch, extra copies included
    extra_samples: int = 0  # of which copies of extra images
    negative_samples: int = 0  # of which negatives (label 10: "none of the ten")
    digit_threshold: float | None = None  # the verdict's, calibrated on validation digits
    config: TrainConfig | None = None  # as trained: batch and LR sized for the device
    # The last epoch's validation logits, of the model last trained: the verdict's
    # calibration reuses them rather than scoring validation once more.
    val_logits: torch.Tensor | None = field(default=None, repr=False)


# SGD, the served recipes', comes from digitlab.ml.optim (see why there).
Optimizer = NesterovSGD | torch.optim.Optimizer

COMPILE_MODES = ("off", "default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")


class WeightAverage:
    """An exponential moving average of a network's weights and BatchNorm statistics: a
    complete copy that can be evaluated and exported as is. The same arithmetic as
    torch's AveragedModel with get_ema_multi_avg_fn and use_buffers=True, but it counts
    its updates on the host: AveragedModel reads its device-side count every step, a sync."""

    def __init__(self, model: nn.Module, decay: float) -> None:
        self.module = copy.deepcopy(model)
        self.decay = decay
        self.updates = 0

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        mine = [*self.module.parameters(), *self.module.buffers()]
        theirs = [t.detach() for t in (*model.parameters(), *model.buffers())]
        if self.updates == 0:
            torch._foreach_copy_(mine, theirs)
        else:
            floats = [i for i, t in enumerate(mine) if t.is_floating_point()]
            torch._foreach_lerp_(
                [mine[i] for i in floats], [theirs[i] for i in floats], 1 - self.decay
            )
            for a, b in zip(mine, theirs, strict=True):
                if not a.is_floating_point():  # BatchNorm's batch count, as AveragedModel
                    a.copy_(a * self.decay + b * (1 - self.decay))
        self.updates += 1


def pick_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def to_tensors(
    images: npt.NDArray[np.uint8], labels: npt.NDArray[np.uint8], device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 (N, 28, 28) -> uint8 (N, 1, 28, 28) on the device; scaled per batch, which
    keeps the resident copy 4x smaller than float."""
    x = torch.from_numpy(np.array(images, copy=True)).unsqueeze(1).to(device)
    y = torch.from_numpy(labels.astype(np.int64)).to(device)
    return x, y


def as_input(xb: torch.Tensor) -> torch.Tensor:
    return xb.float().div_(255).contiguous(memory_format=torch.channels_last)


def autocast(device: torch.device, enabled: bool) -> torch.autocast:
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=enabled)


def bf16_supported(device: torch.device) -> bool:
    if device.type == "cuda":
        return bool(torch.cuda.is_bf16_supported())
    # oneDNN runs bf16 convolutions fast only on CPUs with native bf16 (AVX512-BF16, AMX).
    return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


def make_optimizer(model: nn.Module, cfg: TrainConfig) -> Optimizer:
    # No weight decay on BatchNorm and bias parameters (1-d tensors).
    decay = [p for p in model.parameters() if p.ndim > 1]
    no_decay = [p for p in model.parameters() if p.ndim <= 1]
    groups = [
        {"params": decay, "weight_decay": cfg.weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    if cfg.optimizer == "sgd":
        return NesterovSGD(groups, lr=cfg.lr, momentum=cfg.momentum)
    if cfg.optimizer == "adam":
        return torch.optim.Adam(groups, lr=cfg.lr)
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(groups, lr=cfg.lr)
    raise ValueError(f"unknown optimizer {cfg.optimizer!r}; choose sgd, adam or adamw")


def make_schedule(opt: Optimizer, cfg: TrainConfig, total_steps: int) -> StepSchedule:
    if cfg.schedule == "constant":
        return StepSchedule(opt, lambda _: 1.0)
    if cfg.schedule == "onecycle":
        warm = max(1, int(cfg.warmup * total_steps))

        def factor(step: int) -> float:
            # Linear warm-up from 10% to the peak, then cosine down to zero.
            if step < warm:
                return 0.1 + 0.9 * step / warm
            t = (step - warm) / max(1, total_steps - warm)
            return 0.5 * (1 + math.cos(math.pi * min(1.0, t)))

        return StepSchedule(opt, factor)
    raise ValueError(f"unknown schedule {cfg.schedule!r}; choose onecycle or constant")


def train_one_epoch(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    opt: Optimizer,
    sched: StepSchedule,
    cfg: TrainConfig,
    generator: torch.Generator,
    use_bf16: bool,
    on_step: StepCallback | None = None,
    ema: WeightAverage | None = None,
    *,
    host: torch.Generator | None = None,
    forward: nn.Module | None = None,
) -> dict[str, float]:
    """One pass over (x, y), both on the device, in an order and with augmentation drawn
    from `generator` (on the same device; `host`, a CPU generator, for the augmentation's
    per-batch choices). `forward`: the network to call, e.g. a compiled `model`."""
    model.train()
    forward = model if forward is None else forward
    device = x.device
    order = torch.randperm(len(x), generator=generator, device=generator.device).to(device)
    aug = cfg.augmentation()
    loss_sum = torch.zeros((), device=device)
    correct = torch.zeros((), device=device, dtype=torch.long)
    seen = 0
    for start in range(0, len(x), cfg.batch_size):
        idx = order[start : start + cfg.batch_size]
        xb, yb = as_input(x[idx]), y[idx]  # (B, 1, 28, 28), (B,)
        if aug.active:
            xb = augment(xb, generator, aug, host=host)
        with autocast(device, use_bf16):
            logits = forward(xb)
            loss = F.cross_entropy(logits.float(), yb, label_smoothing=cfg.label_smoothing)
        opt.zero_grad(set_to_none=True)
        loss.backward()  # type: ignore[no-untyped-call]
        opt.step()
        sched.step()
        if ema is not None:
            ema.update(model)
        # Accumulate on the device: no host sync per step.
        loss_sum += loss.detach() * len(idx)
        correct += (logits.detach().argmax(1) == yb).sum()
        seen += len(idx)
        if on_step is not None:
            on_step(len(idx))
        if cfg.dry_run:
            break
    # The epoch's one read from the device.
    loss_total, correct_total = torch.stack([loss_sum, correct.double()]).tolist()
    return {"train_loss": loss_total / seen, "train_acc": correct_total / seen}


@torch.no_grad()
def predict_logits(
    model: nn.Module, x: torch.Tensor, batch_size: int | None = None
) -> torch.Tensor:
    """(N, 10) float32 logits for uint8 (N, 1, 28, 28) images, in eval mode, on x's
    device; batches of 10,000 on a GPU, 2,000 on a CPU (default)."""
    model.eval()
    size = batch_size or (10_000 if x.device.type == "cuda" else 2000)
    chunks = [model(as_input(x[i : i + size])).float() for i in range(0, len(x), size)]
    return torch.cat(chunks)


def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
    return scores(predict_logits(model, x), y)


def scores(logits: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
    """Loss and digit accuracy of (N, 10 or 11) logits against labels."""
    loss = F.cross_entropy(logits, y)
    acc = (logits[:, :10].argmax(1) == y).float().mean()  # a digit is what is served
    loss_value, acc_value = torch.stack([loss, acc]).tolist()  # one read from the device
    return {"loss": loss_value, "acc": acc_value}


def fit(
    cfg: TrainConfig,
    images: npt.NDArray[np.uint8],
    labels: npt.NDArray[np.uint8],
    *,
    extra: Images | None = None,
    init: dict[str, torch.Tensor] | None = None,
    negatives: npt.NDArray[np.uint8] | None = None,
    on_epoch: EpochCallback | None = None,
    on_step: StepCallback | None = None,
    device: torch.device | None = None,
) -> FitResult:
    """Train a model on (N, 28, 28) uint8 images; the last `cfg.val_size` of a seeded
    shuffle are held out for validation. `extra` images join the training part only
    (validation stays the dataset's own), each counting `cfg.extra_weight` times
    (`weighted_extra`). `init`: a state dict to start from instead of a fresh init;
    `cfg.epochs` may then be 0 (the weights come back as given). With `cfg.members` > 1,
    trains that many networks from different seeds and returns their Ensemble. With
    `cfg.negatives` > 0, `negatives` (else `negatives_for` makes them from `images`) join
    the training part as an 11th class, and the verdict's threshold is calibrated on the
    validation digits (`result.digit_threshold`). On CUDA
    the batch and LR are sized for it (`TrainConfig.for_device`); `result.config` is the
    config as trained. Deterministic for a given seed and device."""
    if cfg.compile not in COMPILE_MODES:
        raise ValueError(f"unknown compile mode {cfg.compile!r}; choose {', '.join(COMPILE_MODES)}")
    if init is not None and cfg.members != 1:
        raise ValueError("starting weights are for a single network, not an ensemble")
    if cfg.epochs < (0 if init is not None else 1):
        raise ValueError(f"epochs must be >= 1 (0 only from given weights), not {cfg.epochs}")
    device = device or pick_device()
    cfg = cfg.for_device(device.type)
    if device.type == "cuda":
        torch.backends.cudnn.deterministic = cfg.deterministic
        torch.backends.cudnn.benchmark = not cfg.deterministic
    seed_everything(cfg.seed)
    x, y = to_tensors(images, labels, device)  # the one upload: uint8, 47 MB for MNIST
    # The split is drawn on the host, so validation holds the same images on any device.
    split = torch.randperm(len(x), generator=torch.Generator().manual_seed(cfg.seed))
    split = split.to(device)
    val_size = min(cfg.val_size, len(x) // 5)
    train_idx, val_idx = split[: len(x) - val_size], split[len(x) - val_size :]
    train = (x[train_idx], y[train_idx])
    val = (x[val_idx], y[val_idx]) if val_size else None
    extra_samples = 0
    if extra is not None:
        x_extra, y_extra = to_tensors(*weighted_extra(*extra, cfg.extra_weight, cfg.seed), device)
        train = (torch.cat([train[0], x_extra]), torch.cat([train[1], y_extra]))
        extra_samples = len(y_extra)
    negative_samples = 0
    if cfg.outputs == 11:
        if negatives is None:
            negatives = negatives_for(cfg, images, labels)
        x_neg, y_neg = to_tensors(negatives, np.full(len(negatives), NONE_LABEL, np.uint8), device)
        train = (torch.cat([train[0], x_neg]), torch.cat([train[1], y_neg]))
        negative_samples = len(y_neg)

    result = FitResult(
        model=nn.Sequential(),
        device=str(device),
        train_size=len(train[1]),
        extra_samples=extra_samples,
        negative_samples=negative_samples,
        config=cfg,
    )
    started = time.perf_counter()
    members = []
    for member in range(cfg.members):
        seed = cfg.seed + 1000 * member
        seed_everything(seed)
        generator = torch.Generator(device).manual_seed(seed)
        model = train_member(
            cfg, train, val, generator, member, result, on_epoch, on_step, init=init
        )
        members.append(model)
    result.model = members[0] if len(members) == 1 else Ensemble(members)
    result.train_seconds = time.perf_counter() - started
    last = result.history[-1] if result.history else {}
    if val is not None and len(members) == 1 and "val_acc" in last:
        result.val_acc = last["val_acc"]  # the last epoch scored this very model
    elif val is not None:
        result.val_acc = evaluate(result.model, *val)["acc"]
    if val is not None and cfg.outputs == 11:
        reuse = len(members) == 1 and result.val_logits is not None
        logits = result.val_logits if reuse else predict_logits(result.model, val[0])
        p_none = cast(torch.Tensor, logits).softmax(1)[:, NONE_LABEL]
        result.digit_threshold = calibrate((1 - p_none).cpu().numpy(), cfg.verdict_accept)
    result.model.eval()
    return result


def train_member(
    cfg: TrainConfig,
    train: tuple[torch.Tensor, torch.Tensor],
    val: tuple[torch.Tensor, torch.Tensor] | None,
    generator: torch.Generator,
    member: int,
    result: FitResult,
    on_epoch: EpochCallback | None,
    on_step: StepCallback | None,
    *,
    init: dict[str, torch.Tensor] | None = None,
) -> nn.Sequential:
    """Train one network, from `init` weights if given; appends a history row per epoch
    to `result`."""
    x_train, y_train = train
    device = x_train.device
    model = build_model(cfg.arch, cfg.width, cfg.hidden, cfg.outputs)
    if init is not None:
        model.load_state_dict(init)  # before the EMA copy, which must start from it too
    model = model.to(device)
    model = model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    opt = make_optimizer(model, cfg)
    steps_per_epoch = 1 if cfg.dry_run else math.ceil(len(x_train) / cfg.batch_size)
    epochs = 1 if cfg.dry_run else cfg.epochs
    sched = make_schedule(opt, cfg, steps_per_epoch * epochs)
    use_bf16 = cfg.bf16 and bf16_supported(device)
    ema = WeightAverage(model, cfg.ema) if cfg.ema > 0 else None
    final = model if ema is None else cast(nn.Sequential, ema.module)
    # The augmentation's per-batch choices: on a CPU from the same generator (as before
    # generators lived on the device), elsewhere from a CPU one, so they need no sync.
    seed = int(generator.initial_seed())
    host = generator if device.type == "cpu" else torch.Generator().manual_seed(seed)
    forward = model if cfg.compile == "off" else torch.compile(model, mode=cfg.compile)
    for epoch in range(1, epochs + 1):
        t0 = time.perf_counter()
        row: dict[str, Any] = {"member": member, "epoch": epoch, "lr": opt.param_groups[0]["lr"]}
        row |= train_one_epoch(
            model, x_train, y_train, opt, sched, cfg, generator, use_bf16, on_step, ema,
            host=host, forward=cast(nn.Module, forward),
        )  # fmt: skip
        train_time = time.perf_counter() - t0
        if val is not None:
            result.val_logits = predict_logits(final, val[0])
            scored = scores(result.val_logits, val[1])
            row |= {"val_loss": scored["loss"], "val_acc": scored["acc"]}
        row["seconds"] = time.perf_counter() - t0
        row["images_per_s"] = (cfg.batch_size if cfg.dry_run else len(x_train)) / train_time
        result.history.append(row)
        if on_epoch is not None:
            on_epoch(row)
    return final.eval()
