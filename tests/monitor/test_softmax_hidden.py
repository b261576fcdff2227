"""activation.softmax-as-hidden-activation: module and functional styles, and lookalikes that stay quiet."""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from nndoctor.monitor import Observer
from nndoctor.monitor.checks.softmax_hidden import SoftmaxHidden

CODE = "activation.softmax-as-hidden-activation"


def _data(n=256, d=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=g)
    return x, x[:, :4].argmax(dim=1)


def _run(model, opt, steps=12, batch=64):
    x, y = _data()
    with Observer(checks=[SoftmaxHidden]) as obs:
        for i in range(steps):
            j = (i * batch) % len(x)
            opt.zero_grad()
            F.cross_entropy(model(x[j:j + batch]), y[j:j + batch]).backward()
            opt.step()
    return [f for f in obs.findings if f.code == CODE]


class _Functional(nn.Module):
    """Subclass with torch.softmax in forward (the functional style)."""

    def __init__(self, sharp: float = 1.0):
        super().__init__()
        self.fc1, self.fc2, self.sharp = nn.Linear(16, 48), nn.Linear(48, 4), sharp

    def forward(self, x):
        return self.fc2(torch.softmax(self.sharp * self.fc1(x), dim=-1))


class _Attention(nn.Module):
    """Softmax weights multiply values (attention), then a Linear reads the pooled values."""

    def __init__(self):
        super().__init__()
        self.score, self.value, self.out = nn.Linear(2, 1), nn.Linear(2, 32), nn.Linear(32, 4)

    def forward(self, x):
        tokens = x.view(x.shape[0], 8, 2)
        w = F.softmax(self.score(tokens).squeeze(-1), dim=-1)          # (N, 8)
        pooled = (w.unsqueeze(-1) * self.value(tokens)).sum(1)
        return self.out(pooled)


def test_sequential_softmax_modules_between_layers_warn():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(16, 64), nn.Softmax(dim=1), nn.Linear(64, 64), nn.Softmax(dim=1),
                          nn.Linear(64, 4))
    found = _run(model, torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9))
    assert found and found[0].severity.value == "warning"
    assert found[0].evidence["width"] == 64 and found[0].first_step <= 5


def test_functional_softmax_in_subclass_warns_with_adam():
    torch.manual_seed(0)
    model = _Functional()
    found = _run(model, torch.optim.Adam(model.parameters(), lr=1e-3))
    assert found and found[0].location.endswith("fc2")


def test_relu_network_stays_quiet():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(16, 64), nn.ReLU(), nn.Linear(64, 4))
    assert not _run(model, torch.optim.SGD(model.parameters(), lr=0.1))


def test_attention_softmax_into_matmul_stays_quiet():
    torch.manual_seed(0)
    model = _Attention()
    assert not _run(model, torch.optim.Adam(model.parameters(), lr=1e-3))


def test_sharp_softmax_gate_into_linear_stays_quiet():
    """Near one-hot rows (a routing / Gumbel-like gate) are not a squashed signal."""
    torch.manual_seed(0)
    model = _Functional(sharp=50.0)
    assert not _run(model, torch.optim.Adam(model.parameters(), lr=1e-3))


def test_softmax_output_into_a_loss_stays_quiet():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 4), nn.Softmax(dim=1))
    x, y = _data()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    with Observer(checks=[SoftmaxHidden]) as obs:
        for _ in range(10):
            opt.zero_grad()
            F.nll_loss(torch.log(model(x[:64]) + 1e-8), y[:64]).backward()
            opt.step()
    assert not [f for f in obs.findings if f.code == CODE]
