"""A deep SELU network badly initialised (std 0.02 whatever the fan-in: the activation scale shrinks
layer after layer) is named with its activation, and the re-initialisation remedy gives it LeCun's
init (normal, std 1/sqrt(fan_in): what SELU's self-normalisation assumes), training like the fixed
twin, in three styles (nn.SELU in a Sequential, F.selu in a subclass, torch.selu over a ModuleList)."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from helpers import finding_of, remedied

from nndoctor.monitor.checks.init import InitCheck


class _Functional(nn.Module):
    def __init__(self, width: int, depth: int) -> None:
        super().__init__()
        self.inp = nn.Linear(8, width)
        self.hidden = nn.Sequential(*(nn.Linear(width, width) for _ in range(depth - 1)))
        self.out = nn.Linear(width, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.selu(self.inp(x))
        for layer in self.hidden:
            h = F.selu(layer(h))
        return self.out(h)


class _ListNet(nn.Module):
    def __init__(self, width: int, depth: int) -> None:
        super().__init__()
        self.layers = nn.ModuleList([nn.Linear(8, width)] + [nn.Linear(width, width) for _ in range(depth - 1)])
        self.head = nn.Linear(width, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = torch.selu(layer(x))
        return self.head(x)


def _model(style: str, width: int = 32, depth: int = 10) -> nn.Module:
    if style == "functional":
        return _Functional(width, depth)
    if style == "list":
        return _ListNet(width, depth)
    layers: list[nn.Module] = []
    for i in range(depth):
        layers += [nn.Linear(8 if i == 0 else width, width), nn.SELU()]
    return nn.Sequential(*layers, nn.Linear(width, 3))


def _run(style: str, init: str, steps: int = 150) -> float:
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(1)
    x, xv = torch.randn(256, 8, generator=g), torch.randn(512, 8, generator=g)
    w = torch.tensor([1.0, -1.0, 0.5])
    y, yv = (x[:, :3] * w).argmax(1), (xv[:, :3] * w).argmax(1)
    model = _model(style)
    for m in model.modules():
        if isinstance(m, nn.Linear):
            if init == "small":
                nn.init.normal_(m.weight, 0.0, 0.02)            # the bug: a transformer's std, 10 layers deep
            else:
                nn.init.kaiming_normal_(m.weight, nonlinearity="linear")   # the fixed twin: LeCun
            nn.init.zeros_(m.bias)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    for _ in range(steps):
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        return float((model(xv).argmax(1) == yv).float().mean())


@pytest.mark.parametrize("style", ["sequential", "functional", "list"])
def test_a_deep_selu_net_with_a_tiny_init_gets_lecun_and_trains_like_the_twin(style: str) -> None:
    finding = finding_of(lambda: _run(style, "small", steps=3), [InitCheck], "init.activation-scale")
    assert finding["evidence"]["activation"] == "selu"
    bug, twin = _run(style, "small"), _run(style, "lecun")
    with remedied(finding):
        fixed = _run(style, "small")
    assert twin - bug > 0.1, (bug, twin)
    assert fixed - bug >= 0.9 * (twin - bug), (bug, fixed, twin)
