"""optimizer.dampening-cancels-momentum: a dampening that cancels SGD's momentum, named when the run
stalls; a deliberate gradient average that trains, plain momentum and Adam stay below warning."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from nndoctor.findings import Severity
from nndoctor.monitor import Observer
from nndoctor.monitor.checks.dampening import DampenedMomentum

CODE = "optimizer.dampening-cancels-momentum"
_G = torch.Generator().manual_seed(0)
X = torch.randn(512, 10, generator=_G)
Y = (X[:, :3].sum(1) > 0).long() + (X[:, 3] > 1).long()


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(10, 32), nn.Linear(32, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(torch.tanh(self.fc1(x)))


def _run(style: str, **sgd) -> list:
    torch.manual_seed(0)
    model = Net() if style == "subclass" else nn.Sequential(nn.Linear(10, 32), nn.Tanh(), nn.Linear(32, 3))
    opt = torch.optim.SGD(model.parameters(), **sgd) if sgd else torch.optim.Adam(model.parameters(), lr=1e-2)
    loss_fn = nn.CrossEntropyLoss() if style == "subclass" else F.cross_entropy
    with Observer(checks=[DampenedMomentum]) as obs:
        for i in range(60):
            xb, yb = X[i % 16 * 32:(i % 16 + 1) * 32], Y[i % 16 * 32:(i % 16 + 1) * 32]
            opt.zero_grad()
            loss_fn(model(xb), yb).backward()
            opt.step()
    assert not obs.internal_errors, obs.internal_errors
    return [f for f in obs.findings if f.code == CODE]


@pytest.mark.parametrize("style", ["subclass", "sequential"])
def test_dampening_written_for_momentum_stalls_the_run(style):
    found = _run(style, lr=2e-3, momentum=0.9, dampening=0.9)
    assert len(found) == 1 and found[0].severity is Severity.WARNING, found
    ev = found[0].evidence
    assert ev["stalled"] and ev["effective_lr"] == pytest.approx(2e-3) and ev["intended_lr"] == pytest.approx(2e-2)
    assert "dampening=0.9" in found[0].message


@pytest.mark.parametrize("style", ["subclass", "sequential"])
def test_a_gradient_average_with_its_lr_raised_is_info(style):
    # dampening = momentum on purpose (an average of the gradients) with an lr chosen for it: it trains
    found = _run(style, lr=0.5, momentum=0.9, dampening=0.9)
    assert [f.severity for f in found] == [Severity.INFO], found


@pytest.mark.parametrize("sgd", [{"lr": 2e-3, "momentum": 0.9}, {"lr": 2e-3, "momentum": 0.9, "dampening": 0.1},
                                 {"lr": 2e-3}, {}])
def test_plain_momentum_small_dampening_plain_sgd_and_adam_are_quiet(sgd):
    assert _run("sequential", **sgd) == []
