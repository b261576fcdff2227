"""optimizer.extreme-momentum from the run: SGD momentum 0.98-0.995 named when the loss goes up, swings
or explodes; the same momentum with an lr chosen for it, Adam's beta1 and plain momentum stay quiet."""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from nndoctor.findings import Severity
from nndoctor.monitor import Observer
from nndoctor.monitor.checks.high_momentum import HighMomentumUnstable

CODE = "optimizer.extreme-momentum"
_G = torch.Generator().manual_seed(0)
X = torch.randn(512, 16, generator=_G)
Y = (X[:, :4].sum(1) > 0).long() + (X[:, 4] > 0.5).long()


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc1, self.fc2, self.fc3 = nn.Linear(16, 64), nn.Linear(64, 64), nn.Linear(64, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc3(F.relu(self.fc2(F.relu(self.fc1(x)))))


def _run(make_opt, steps: int = 240, subclass: bool = False) -> list:
    torch.manual_seed(0)
    model = Net() if subclass else nn.Sequential(nn.Linear(16, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(),
                                                 nn.Linear(64, 3))
    opt = make_opt(model)
    with Observer(checks=[HighMomentumUnstable]) as obs:
        for i in range(steps):
            xb, yb = X[i % 16 * 32:(i % 16 + 1) * 32], Y[i % 16 * 32:(i % 16 + 1) * 32]
            opt.zero_grad()
            F.cross_entropy(model(xb), yb).backward()
            opt.step()
    assert not obs.internal_errors, obs.internal_errors
    return [f for f in obs.findings if f.severity is not Severity.INFO]


def test_momentum_099_that_destabilises_training_is_caught_in_three_styles():
    styles = (
        (lambda m: torch.optim.SGD(m.parameters(), lr=0.3, momentum=0.99), False),
        (lambda m: torch.optim.SGD([{"params": m.fc1.parameters()}, {"params": m.fc2.parameters()},
                                    {"params": m.fc3.parameters()}], lr=0.3, momentum=0.99, nesterov=True), True),
        (lambda m: torch.optim.SGD(m.parameters(), lr=0.3, momentum=0.985, weight_decay=1e-4), False),
    )
    for make, subclass in styles:
        found = _run(make, subclass=subclass)
        assert found and {f.code for f in found} == {CODE}, found
        f = found[0]
        assert f.severity is Severity.WARNING
        assert 0.98 <= f.evidence["momentum"] < 0.995
        assert f.evidence["symptom"] in ("goes-up", "oscillates", "explodes")
        assert f.evidence["effective_lr"] > f.evidence["lr"] * 50


def test_high_momentum_with_an_lr_chosen_for_it_and_other_optimizers_are_quiet():
    for make in (lambda m: torch.optim.SGD(m.parameters(), lr=1e-3, momentum=0.99),
                 lambda m: torch.optim.Adam(m.parameters(), lr=1e-3, betas=(0.99, 0.999)),
                 lambda m: torch.optim.SGD(m.parameters(), lr=0.05, momentum=0.9)):
        assert _run(make) == []
