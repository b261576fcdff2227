"""activation.identity-activation: LeakyReLU(True) / RReLU(1, 1) make a deep model linear (warning),
a slope near 1 is info; LeakyReLU(0.2, True), PReLU and a one-layer model stay quiet."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from nndoctor.findings import Severity
from nndoctor.monitor import Observer
from nndoctor.monitor.checks.identity_activation import IdentityActivation

CODE = "activation.identity-activation"
_G = torch.Generator().manual_seed(0)
X = torch.randn(64, 2, generator=_G)
Y = (X.norm(dim=1) > 1.2).long()  # radial classes: no linear model separates them


class Net(nn.Module):
    def __init__(self, act: nn.Module) -> None:
        super().__init__()
        self.fc1, self.act, self.fc2 = nn.Linear(2, 32), act, nn.Linear(32, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


def _run(model: nn.Module) -> list:
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with Observer(checks=[IdentityActivation]) as obs:
        for _ in range(3):
            opt.zero_grad()
            F.cross_entropy(model(X), Y).backward()
            opt.step()
    assert not obs.internal_errors, obs.internal_errors
    return [f for f in obs.findings if f.code == CODE]


@pytest.mark.parametrize("make", [
    lambda: nn.Sequential(nn.Linear(2, 32), nn.LeakyReLU(True), nn.Linear(32, 32), nn.LeakyReLU(True), nn.Linear(32, 2)),
    lambda: Net(nn.RReLU(1.0, 1.0)),
], ids=["sequential-leaky-true", "subclass-rrelu"])
def test_an_identity_activation_is_a_warning(make):
    found = _run(make())
    assert len(found) == 1 and found[0].severity is Severity.WARNING, found
    assert found[0].evidence["identity"] and found[0].location.startswith("model.")


def test_a_slope_near_one_is_info():
    found = _run(Net(nn.LeakyReLU(0.95)))
    assert [f.severity for f in found] == [Severity.INFO], found


@pytest.mark.parametrize("make", [lambda: Net(nn.LeakyReLU(0.2, True)), lambda: Net(nn.LeakyReLU(inplace=True)),
                                  lambda: Net(nn.PReLU()), lambda: Net(nn.ReLU()),
                                  lambda: nn.Sequential(nn.Linear(2, 2), nn.LeakyReLU(True))])
def test_real_nonlinearities_and_single_layer_models_are_quiet(make):
    assert _run(make()) == []
