"""The re-initialisation remedy uses the scheme made for the activation the finding measured."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from helpers import apply_remedy as _apply


class _TanhNet(nn.Module):
    """The same deep tanh net written with a functional activation in forward()."""

    def __init__(self, width: int, depth: int) -> None:
        super().__init__()
        self.inp = nn.Linear(8, width)
        self.hidden = nn.ModuleList(nn.Linear(width, width) for _ in range(depth - 1))
        self.out = nn.Linear(width, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.tanh(self.inp(x))
        for layer in self.hidden:
            h = torch.tanh(layer(h))
        return self.out(h)


def _model(style: str, width: int = 32, depth: int = 10) -> nn.Module:
    if style == "subclass":
        return _TanhNet(width, depth)
    layers: list[nn.Module] = [nn.Linear(8, width), nn.Tanh()]
    for _ in range(depth - 1):
        layers += [nn.Linear(width, width), nn.Tanh()]
    return nn.Sequential(*layers, nn.Linear(width, 3))


def _run(style: str, init: str, steps: int = 60) -> float:
    """Held-out accuracy after ``steps`` full-batch steps (a saturated net memorises, it does not generalise)."""
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(1)
    x, xv = torch.randn(256, 8, generator=g), torch.randn(512, 8, generator=g)
    w = torch.tensor([1.0, -1.0, 0.5])
    y, yv = (x[:, :3] * w).argmax(1), (xv[:, :3] * w).argmax(1)
    model = _model(style)
    for m in model.modules():
        if isinstance(m, nn.Linear):
            if init == "std1":
                nn.init.normal_(m.weight, 0.0, 1.0)         # the bug: std 1 whatever the fan-in
            else:
                nn.init.xavier_normal_(m.weight, gain=nn.init.calculate_gain("tanh"))   # the fixed twin
            nn.init.zeros_(m.bias)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    for _ in range(steps):
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        return float((model(xv).argmax(1) == yv).float().mean())


@pytest.mark.parametrize("style", ["sequential", "subclass"])
def test_deep_tanh_with_std1_init_gets_glorot_with_tanh_gain_and_trains_like_the_twin(style: str) -> None:
    twin = _run(style, "glorot")
    bug = _run(style, "std1")
    with _apply("init.activation-scale", "model.0", activation="tanh"):
        fixed = _run(style, "std1")
        healthy = _run(style, "glorot")
    assert twin > bug + 0.2, (bug, twin)
    assert fixed - bug >= 0.9 * (twin - bug), (bug, fixed, twin)
    assert healthy == twin                                   # a Glorot-initialised net is left alone
    with _apply("init.activation-scale", "model.0"):         # PyTorch's default alone vanishes at this depth
        assert _run(style, "std1") - bug < 0.5 * (twin - bug)


def test_the_scheme_follows_the_activation_and_an_unknown_one_keeps_the_default() -> None:
    for activation, expected in (("tanh", 5 / 3 * math.sqrt(2 / 128)), ("relu", math.sqrt(2 / 64)),
                                 ("", 1 / math.sqrt(3 * 64))):
        torch.manual_seed(0)
        layer = nn.Linear(64, 64)
        nn.init.normal_(layer.weight, 0.0, 1.0)
        opt = torch.optim.SGD(layer.parameters(), lr=0.0)
        with _apply("init.activation-scale", "layer", **({"activation": activation} if activation else {})):
            layer(torch.randn(2, 64)).sum().backward()
            opt.step()
        assert float(layer.weight.detach().std()) == pytest.approx(expected, rel=0.1), activation
