"""loss-input.rate-into-poisson-log-input: a rate (softplus / exp / ReLU output) into PoissonNLLLoss with
log_input=True (module default, functional keyword or positional), and log_input=False on a raw output
that goes negative, named; the two consistent conventions quiet."""

from __future__ import annotations

from typing import Callable

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from nndoctor.debug.poisson_input import PoissonLogInput
from nndoctor.findings import Severity
from nndoctor.monitor import Observer, Schedule
from tests.helpers import assert_script_headline, run_script

CODE = "loss-input.rate-into-poisson-log-input"
_G = torch.Generator().manual_seed(0)
X = torch.randn(256, 6, generator=_G)
COUNTS = torch.poisson(torch.exp(0.5 * X[:, 0] + 0.5), generator=_G)


class _RateNet(nn.Module):
    """A subclassed model that returns exp of its score: a rate."""

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Linear(6, 16), nn.Tanh(), nn.Linear(16, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.exp(self.body(x)).view(-1)


def _observe(model: nn.Module, loss: Callable) -> list:
    torch.manual_seed(0)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    with Observer(checks=[PoissonLogInput], schedule=Schedule(dense=4, every=2)) as obs:
        for i in range(8):
            opt.zero_grad()
            out = model(X[i * 32:(i + 1) * 32])
            loss(out.reshape(-1), COUNTS[i * 32:(i + 1) * 32]).backward()
            opt.step()
    assert not obs.internal_errors, obs.internal_errors
    return [f for f in obs.findings if f.code == CODE]


def _mlp(*tail: nn.Module) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 1), *tail)


_RATE_FAULTS = {
    "module-default-softplus": (lambda: _mlp(nn.Softplus()), nn.PoissonNLLLoss()),
    "functional-exp-subclass": (_RateNet, lambda p, y: F.poisson_nll_loss(p, y)),
    "functional-positional-relu": (lambda: _mlp(nn.ReLU()), lambda p, y: F.poisson_nll_loss(p, y, True)),
}


@pytest.mark.parametrize("name", list(_RATE_FAULTS))
def test_a_rate_into_log_input_true_is_named(name):
    make, loss = _RATE_FAULTS[name]
    found = _observe(make(), loss)
    assert len(found) == 1, found
    assert found[0].category == "loss-input" and found[0].severity == Severity.WARNING
    assert found[0].evidence["log_input"] is True


def test_negative_rates_with_log_input_false_are_an_error():
    found = _observe(_mlp(), nn.PoissonNLLLoss(log_input=False))
    assert len(found) == 1 and found[0].severity == Severity.ERROR
    assert found[0].evidence["negative_share"] > 0


@pytest.mark.parametrize("make,loss", [
    (lambda: _mlp(), nn.PoissonNLLLoss()),                                     # raw output = log-rate
    (lambda: _mlp(nn.Softplus()), nn.PoissonNLLLoss(log_input=False)),         # rate, told so
    (_RateNet, lambda p, y: F.poisson_nll_loss(p, y, log_input=False)),        # exp rate, told so
    (lambda: _mlp(nn.Softplus()), nn.MSELoss()),                               # not a Poisson loss
], ids=["log-rate-default", "softplus-log-input-false", "exp-log-input-false", "mse"])
def test_consistent_conventions_are_quiet(make, loss):
    assert _observe(make(), loss) == []


_SCRIPT = '''
import torch, torch.nn as nn
torch.manual_seed(0)
X = torch.randn(2000, 6)
y = torch.poisson(torch.exp(0.5 * X[:, 0] - 0.3 * X[:, 1] + 1.0))
model = nn.Sequential(nn.Linear(6, 32), nn.ReLU(), nn.Linear(32, 1)TAIL)
crit = nn.PoissonNLLLoss(LOGINPUT)
opt = torch.optim.Adam(model.parameters(), lr=1e-3)
for epoch in range(3):
    perm = torch.randperm(1600)
    for i in range(0, 1600, 64):
        b = perm[i:i + 64]
        opt.zero_grad()
        crit(model(X[b]).squeeze(1), y[b]).backward()
        opt.step()
'''


@pytest.mark.parametrize("tail,log_input,expected", [(", nn.Softplus()", "", True),
                                                      (", nn.Softplus()", "log_input=False", False)],
                         ids=["softplus-default", "softplus-told"])
def test_script_headline(tmp_path, tail, log_input, expected):
    result = run_script(tmp_path, _SCRIPT.replace("TAIL", tail).replace("LOGINPUT", log_input))
    assert_script_headline(result, CODE, expected)
