"""digitlab.ml.optim against the torch.optim classes it replaces: the same weights and
learning rates step by step, and training that no longer imports torch._dynamo."""

from __future__ import annotations

import math
import subprocess
import sys

import torch
from torch import nn

from digitlab.ml.optim import NesterovSGD, StepSchedule


def _net(seed: int) -> nn.Sequential:
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.Flatten(), nn.Linear(4 * 6 * 6, 3)
    )


def _groups(net: nn.Module) -> list[dict[str, object]]:
    return [
        {"params": [p for p in net.parameters() if p.ndim > 1], "weight_decay": 5e-4},
        {"params": [p for p in net.parameters() if p.ndim <= 1], "weight_decay": 0.0},
    ]


def _factor(step: int) -> float:
    return 0.1 + 0.9 * min(step, 5) / 5 * math.cos(step / 10)


def test_nesterov_sgd_and_its_schedule_match_torch_optim() -> None:
    ours, theirs = _net(0), _net(0)
    opt = NesterovSGD(_groups(ours), lr=0.2, momentum=0.9)
    ref = torch.optim.SGD(_groups(theirs), lr=0.2, momentum=0.9, nesterov=True)
    sched, ref_sched = StepSchedule(opt, _factor), torch.optim.lr_scheduler.LambdaLR(ref, _factor)
    data = torch.Generator().manual_seed(1)
    for _ in range(12):
        x = torch.randn((16, 1, 8, 8), generator=data)
        y = torch.randint(0, 3, (16,), generator=data)
        for net, o, s in ((ours, opt, sched), (theirs, ref, ref_sched)):
            o.zero_grad(set_to_none=True)
            nn.functional.cross_entropy(net(x), y).backward()
            o.step()
            s.step()
        assert [g["lr"] for g in opt.param_groups] == [g["lr"] for g in ref.param_groups]
    moved = [
        not torch.equal(a, b) for a, b in zip(ours.parameters(), _net(0).parameters(), strict=True)
    ]
    assert all(moved)
    for a, b in zip(ours.parameters(), theirs.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_a_parameter_without_a_gradient_stays_where_it_is() -> None:
    net = _net(0)
    frozen = net[3].bias
    before = frozen.detach().clone()
    opt = NesterovSGD(_groups(net), lr=0.5, momentum=0.9)
    for _ in range(3):
        net(torch.randn(4, 1, 8, 8)).sum().backward()
        frozen.grad = None
        opt.step()
        opt.zero_grad()
    assert torch.equal(frozen, before)
    assert all(p.grad is None for p in net.parameters())


def test_training_the_fast_recipe_never_imports_torch_dynamo() -> None:
    """torch.optim's optimizers import torch._dynamo on first use (1-2 s); the served
    recipes' SGD must not."""
    script = (
        "import sys, numpy as np\n"
        "from digitlab.ml.recipes import get_recipe\n"
        "from digitlab.ml.train import fit\n"
        "rng = np.random.default_rng(0)\n"
        "x = rng.integers(0, 256, (512, 28, 28), dtype=np.uint8)\n"
        "y = (np.arange(512) % 10).astype(np.uint8)\n"
        "cfg = get_recipe('fast').replace(epochs=1, val_size=64, negatives=0.0)\n"
        "fit(cfg, x, y)\n"
        "print('torch._dynamo' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
