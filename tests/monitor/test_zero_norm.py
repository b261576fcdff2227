"""init.zero-norm-weight: zero gamma in a plain stack (two styles); residual zero-gamma and a zero head stay quiet."""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from nndoctor.monitor import Observer
from nndoctor.monitor.checks.zero_norm import ZeroNormWeight

CODE = "init.zero-norm-weight"


def _run(model, opt, steps=8, batch=32):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(256, 12, generator=g)
    y = x[:, :3].argmax(dim=1)
    with Observer(checks=[ZeroNormWeight]) as obs:
        for i in range(steps):
            j = (i * batch) % len(x)
            opt.zero_grad()
            F.cross_entropy(model(x[j:j + batch]), y[j:j + batch]).backward()
            opt.step()
    return [f for f in obs.findings if f.code == CODE]


class _LayerNormNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1, self.ln1, self.fc2 = nn.Linear(12, 32), nn.LayerNorm(32), nn.Linear(32, 3)
        nn.init.zeros_(self.ln1.weight)

    def forward(self, x):
        return self.fc2(F.relu(self.ln1(self.fc1(x))))


class _Residual(nn.Module):
    def __init__(self, zero_head: bool = False):
        super().__init__()
        self.stem, self.fc, self.bn, self.head = nn.Linear(12, 32), nn.Linear(32, 32), nn.BatchNorm1d(32), \
            nn.Linear(32, 3)
        nn.init.zeros_(self.bn.weight)
        if zero_head:
            nn.init.zeros_(self.head.weight)

    def forward(self, x):
        h = F.relu(self.stem(x))
        return self.head(F.relu(h + self.bn(self.fc(h))))


def _plain_bn(zero_gamma: bool, zero_head: bool = False) -> nn.Sequential:
    model = nn.Sequential(nn.Linear(12, 32), nn.BatchNorm1d(32), nn.ReLU(), nn.Linear(32, 3))
    if zero_gamma:
        nn.init.zeros_(model[1].weight)
    if zero_head:
        nn.init.zeros_(model[3].weight)
        nn.init.zeros_(model[3].bias)
    return model


def test_zero_gamma_in_plain_sequential_bn_stack_warns():
    torch.manual_seed(0)
    model = _plain_bn(zero_gamma=True)
    found = _run(model, torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9))
    assert found and found[0].location.endswith("1") and found[0].first_step <= 5


def test_zero_layernorm_weight_in_subclass_warns_with_adam():
    torch.manual_seed(0)
    model = _LayerNormNet()
    found = _run(model, torch.optim.Adam(model.parameters(), lr=1e-3))
    assert found and found[0].location.endswith("ln1")


def test_zero_gamma_at_the_end_of_a_residual_branch_stays_quiet():
    torch.manual_seed(0)
    model = _Residual()
    assert not _run(model, torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9))


def test_zero_head_with_zero_residual_gamma_learns_and_stays_quiet():
    torch.manual_seed(0)
    model = _Residual(zero_head=True)
    assert not _run(model, torch.optim.Adam(model.parameters(), lr=1e-3))


def test_default_bn_stack_with_zero_head_stays_quiet():
    torch.manual_seed(0)
    model = _plain_bn(zero_gamma=False, zero_head=True)
    assert not _run(model, torch.optim.SGD(model.parameters(), lr=0.1))
