"""grad-flow.param-group-lr-zero: a param group left at lr 0 while the others train, caught however the
groups are built; warm-ups from 0, later unfreezing, schedules ending at 0 and one-group runs stay quiet."""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from nndoctor.findings import Severity
from nndoctor.monitor import Observer
from nndoctor.monitor.checks.group_lr import ParamGroupLrZero

CODE = "grad-flow.param-group-lr-zero"
_G = torch.Generator().manual_seed(0)
X = torch.randn(256, 10, generator=_G)
Y = (X[:, :3].sum(1) > 0).long()


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Linear(10, 32), nn.ReLU())
        self.head = nn.Linear(32, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))


def _run(make, steps: int = 40, per_step=None) -> list:
    torch.manual_seed(0)
    model = Net()
    opt, sched = make(model)
    with Observer(checks=[ParamGroupLrZero]) as obs:
        for i in range(steps):
            xb, yb = X[i % 8 * 32:(i % 8 + 1) * 32], Y[i % 8 * 32:(i % 8 + 1) * 32]
            opt.zero_grad()
            F.cross_entropy(model(xb), yb).backward()
            opt.step()
            if sched is not None:
                sched.step()
            if per_step is not None:
                per_step(opt, i)
    assert not obs.internal_errors, obs.internal_errors
    return [f for f in obs.findings if f.severity is not Severity.INFO]


def test_head_group_at_lr_zero_is_caught_in_three_styles():
    base_lr, head_mult = 1e-3, 0

    def dict_groups(m):  # a multiplier of 0
        return torch.optim.Adam([{"params": m.body.parameters()},
                                 {"params": m.head.parameters(), "lr": base_lr * head_mult}], lr=base_lr), None

    def add_group(m):  # add_param_group with an integer division that gives 0
        opt = torch.optim.SGD(m.body.parameters(), lr=0.1, momentum=0.9)
        opt.add_param_group({"params": m.head.parameters(), "lr": 1 // 10})
        return opt, None

    def lambda_per_group(m):  # a per-group schedule whose factor is always 0 for the head
        opt = torch.optim.SGD([{"params": m.body.parameters()}, {"params": m.head.parameters()}], lr=0.1)
        return opt, torch.optim.lr_scheduler.LambdaLR(opt, [lambda s: 1.0, lambda s: 0.0 * min(1.0, s / 10)])

    for make, group in ((dict_groups, 1), (add_group, 1), (lambda_per_group, 1)):
        found = _run(make)
        assert [f.code for f in found] == [CODE], (make.__name__, found)
        f = found[0]
        assert f.severity is Severity.WARNING
        assert f.evidence["group"] == group and f.evidence["steps_checked"] >= 5
        assert f.location == f"opt.param_groups[{group}]"
        assert "head" in f.evidence["params"]


def test_backbone_group_at_zero_is_named_too():
    found = _run(lambda m: (torch.optim.AdamW([{"params": m.body.parameters(), "lr": 0.0},
                                               {"params": m.head.parameters(), "lr": 1e-3}]), None))
    assert [f.evidence["group"] for f in found] == [0]


def test_warmup_from_zero_unfreezing_and_schedules_to_zero_are_quiet():
    def warmup(m):
        opt = torch.optim.AdamW([{"params": m.body.parameters()}, {"params": m.head.parameters()}], lr=1e-3)
        return opt, torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, s / 10))

    def frozen_then_unfrozen(m):  # the head waits 15 steps, then trains
        opt = torch.optim.SGD([{"params": m.body.parameters()}, {"params": m.head.parameters()}], lr=0.1)
        return opt, torch.optim.lr_scheduler.LambdaLR(opt, [lambda s: 1.0, lambda s: 0.0 if s < 15 else 1.0])

    def cosine_to_zero(m):
        opt = torch.optim.SGD([{"params": m.body.parameters()}, {"params": m.head.parameters(), "lr": 0.05}],
                              lr=0.1)
        return opt, torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=40, eta_min=0.0)

    def one_group(m):
        return torch.optim.Adam(m.parameters(), lr=1e-3), None

    def frozen_group(m):  # frozen on purpose: requires_grad False, so it holds no gradient
        m.body.requires_grad_(False)
        return torch.optim.SGD([{"params": m.body.parameters(), "lr": 0.0},
                                {"params": m.head.parameters()}], lr=0.1), None

    for make in (warmup, frozen_then_unfrozen, cosine_to_zero, one_group, frozen_group):
        assert _run(make) == [], make.__name__
