"""SGD with Nesterov momentum and a step-wise learning-rate schedule, without torch.optim.

Every torch.optim optimizer imports torch._dynamo the first time it is built: torch wraps
`add_param_group`, `zero_grad` and `step` in `torch._disable_dynamo`, which imports it
on first use. That import took 1.2-1.8 s of a 2-core CPU's `digitlab train --recipe fast`
(~20 s), and it is a large share of the few seconds a GPU run should take. The arithmetic
here is torch.optim.SGD's (nesterov=True, dampening 0, the foreach path) and LambdaLR's,
so the recipes train as before; tests/ml/test_optim.py holds them side by side. Adam and
AdamW (the reference recipe) still come from torch.optim.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, cast

import torch


class NesterovSGD:
    """SGD with Nesterov momentum. `groups`: dicts of `params` and their `weight_decay`
    (L2, added to the gradient as torch.optim.SGD does)."""

    def __init__(self, groups: Iterable[dict[str, Any]], lr: float, momentum: float) -> None:
        self.param_groups = [
            {"params": list(g["params"]), "weight_decay": g.get("weight_decay", 0.0), "lr": lr}
            for g in groups
        ]
        self.momentum = momentum
        self._buffers: dict[torch.Tensor, torch.Tensor] = {}

    @torch.no_grad()
    def step(self) -> None:
        m = self.momentum
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            if not params:
                continue
            grads: list[torch.Tensor] | tuple[torch.Tensor, ...] = [
                cast(torch.Tensor, p.grad) for p in params
            ]
            if group["weight_decay"]:
                grads = torch._foreach_add(grads, params, alpha=group["weight_decay"])
            if m:
                if all(p in self._buffers for p in params):
                    bufs = [self._buffers[p] for p in params]
                    torch._foreach_mul_(bufs, m)
                    torch._foreach_add_(bufs, grads)
                else:  # a first step: the buffer starts as the gradient itself
                    for p, g in zip(params, grads, strict=True):
                        buf = self._buffers.get(p)
                        if buf is None:
                            self._buffers[p] = g.detach().clone()
                        else:
                            buf.mul_(m).add_(g)
                    bufs = [self._buffers[p] for p in params]
                grads = torch._foreach_add(grads, bufs, alpha=m)
            torch._foreach_add_(params, grads, alpha=-group["lr"])

    def zero_grad(self, set_to_none: bool = True) -> None:
        for group in self.param_groups:
            for p in group["params"]:
                if set_to_none:
                    p.grad = None
                elif p.grad is not None:
                    p.grad.zero_()


class StepSchedule:
    """The learning rate of every group set to its starting value times `factor(step)`,
    from step 0 on construction, one step per `step()` call: LambdaLR's behaviour, for
    any optimizer with `param_groups`."""

    def __init__(self, optimizer: Any, factor: Callable[[int], float]) -> None:
        self.groups: list[dict[str, Any]] = optimizer.param_groups
        self.base = [g["lr"] for g in self.groups]
        self.factor = factor
        self.steps = -1
        self.step()

    def step(self) -> None:
        self.steps += 1
        for group, base in zip(self.groups, self.base, strict=True):
            group["lr"] = base * self.factor(self.steps)
