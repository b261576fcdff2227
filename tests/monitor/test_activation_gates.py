"""activation.saturated on gated units, tanh(a) * sigmoid(b): a saturated member whose partner is not
saturated is info (the gradient passes through the partner); both members saturated still warn."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from nndoctor.monitor import Observer
from nndoctor.monitor.checks.activations import ActivationHealth


class _ConvGate(nn.Module):
    """WaveNet-style: dilated filter and gate convolutions, skip 1x1 convolution."""

    def __init__(self) -> None:
        super().__init__()
        self.inp = nn.Conv1d(4, 32, 1)
        self.filt = nn.Conv1d(32, 32, 2, dilation=2, padding=2)
        self.gate = nn.Conv1d(32, 32, 2, dilation=2, padding=2)
        self.skip = nn.Conv1d(32, 32, 1)
        self.out = nn.Linear(32, 4)

    def forward(self, x):
        h = self.inp(x.view(len(x), 4, 4))
        z = torch.tanh(self.filt(h)) * torch.sigmoid(self.gate(h))
        return self.out(F.relu(self.skip(z)).mean(-1))


class _ModuleGate(nn.Module):
    """Gated MLP with nn.Tanh / nn.Sigmoid module instances (a PixelCNN-like gated block)."""

    def __init__(self) -> None:
        super().__init__()
        self.inp = nn.Linear(16, 32)
        self.filt, self.gate = nn.Linear(32, 32), nn.Linear(32, 32)
        self.tanh, self.sig = nn.Tanh(), nn.Sigmoid()
        self.mix = nn.Linear(32, 32)
        self.out = nn.Linear(32, 4)

    def forward(self, x):
        h = F.relu(self.inp(x))
        z = self.gate_sig(h) * self.tanh(self.filt(h))
        return self.out(F.relu(self.mix(z)))

    def gate_sig(self, h):
        return self.sig(self.gate(h))


class _Cell(nn.Module):
    """An LSTM-like cell written by hand over 4 time steps: c = f*c + i*tanh(g), h = o*tanh(c)."""

    def __init__(self) -> None:
        super().__init__()
        self.filt = nn.Linear(4 + 32, 32)  # the candidate g
        self.gate = nn.Linear(4 + 32, 32)  # the input gate i
        self.f, self.o = nn.Linear(4 + 32, 32), nn.Linear(4 + 32, 32)
        self.out = nn.Linear(32, 4)

    def forward(self, x):
        h = c = x.new_zeros(len(x), 32)
        for t in range(4):
            xh = torch.cat([x[:, 4 * t:4 * t + 4], h], 1)
            c = torch.sigmoid(self.f(xh)) * c + torch.sigmoid(self.gate(xh)) * torch.tanh(self.filt(xh))
            h = torch.sigmoid(self.o(xh)) * torch.tanh(c)
        return self.out(h)


_STYLES = {"conv": _ConvGate, "modules": _ModuleGate, "cell": _Cell}


def _saturated(style: str, gate_too: bool) -> list:
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(512, 16, generator=g)
    y = x[:, :4].argmax(1)
    net = _STYLES[style]()
    nn.init.normal_(net.filt.weight, std=3.0)  # the filter's tanh saturates
    if gate_too:
        nn.init.normal_(net.gate.weight, std=6.0)  # and so does its gate (|x| > 5.3): no path is left
    opt = torch.optim.SGD(net.parameters(), lr=0.01)
    with Observer(checks=[ActivationHealth]) as obs:
        for i in range(30):
            j = (i * 64) % len(x)
            opt.zero_grad()
            F.cross_entropy(net(x[j:j + 64]), y[j:j + 64]).backward()
            opt.step()
    return [f for f in obs.findings if f.code == "activation.saturated"]


@pytest.mark.parametrize("style", sorted(_STYLES))
def test_a_saturated_tanh_behind_an_open_gate_is_info(style):
    found = [f for f in _saturated(style, gate_too=False) if "filt" in f.evidence["layer"]]
    assert found and all(f.severity.value == "info" and f.evidence["gated_by"] for f in found)


@pytest.mark.parametrize("style", sorted(_STYLES))
def test_a_gated_unit_saturated_on_both_sides_warns(style):
    found = _saturated(style, gate_too=True)
    assert any(f.severity.value == "warning" for f in found)
