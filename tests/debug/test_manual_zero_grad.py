"""zero-grad.manual-update-not-cleared: hand-written updates whose gradients are never cleared are
caught in several styles; every healthy hand-written loop (clearing styles, accumulation, gradients
read but never applied) stays quiet."""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from nndoctor.debug.manual_zero_grad import ManualUpdateGradsNotCleared
from nndoctor.findings import Severity
from nndoctor.monitor import Observer

CODE = "zero-grad.manual-update-not-cleared"


def _data(n: int = 256) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, 5, generator=g)
    y = x @ torch.tensor([[1.5], [-2.0], [0.5], [3.0], [-1.0]]) + 0.7
    return x, y


def _observe(loop) -> list:
    with Observer(checks=[ManualUpdateGradsNotCleared]) as obs:
        loop()
    assert not obs.internal_errors, obs.internal_errors
    return [f for f in obs.findings if f.severity is not Severity.INFO]


def _bare_tensors(clear: str, accumulate: int = 1):
    x, y = _data()
    w = torch.zeros(5, 1, requires_grad=True)
    b = torch.zeros(1, requires_grad=True)

    def loop():
        for i in range(24):
            xb, yb = x[(i * 32) % 256:][:32], y[(i * 32) % 256:][:32]
            if clear == "none-before":
                w.grad = b.grad = None
            loss = ((xb @ w + b - yb) ** 2).mean()
            loss.backward()
            if (i + 1) % accumulate == 0:
                with torch.no_grad():
                    w.sub_(0.01 * w.grad / accumulate)
                    b.sub_(0.01 * b.grad / accumulate)
                if clear == "zero-after":
                    w.grad.zero_()
                    b.grad.zero_()
    return loop


def _module(style: str, clear: bool):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 16), nn.Tanh(), nn.Linear(16, 1))
    x, y = _data()

    def loop():
        for i in range(24):
            xb, yb = x[(i * 32) % 256:][:32], y[(i * 32) % 256:][:32]
            if clear:
                model.zero_grad()
            F.mse_loss(model(xb), yb).backward()
            if style == "data":
                for p in model.parameters():
                    p.data -= 0.01 * p.grad.data
            else:  # add_ under no_grad
                with torch.no_grad():
                    for p in model.parameters():
                        p.add_(p.grad, alpha=-0.01)
    return loop


class HandSGD:
    """A hand-rolled optimizer (not a torch.optim.Optimizer): step() only, zero_grad forgotten."""

    def __init__(self, params, lr: float) -> None:
        self.params, self.lr = list(params), lr

    @torch.no_grad()
    def step(self) -> None:
        for p in self.params:
            if p.grad is not None:
                p -= self.lr * p.grad


def test_not_cleared_is_caught_in_three_styles():
    torch.manual_seed(0)
    net = nn.Linear(5, 1)
    x, y = _data()
    opt = HandSGD(net.parameters(), lr=0.01)

    def custom():
        for i in range(24):
            xb, yb = x[(i * 32) % 256:][:32], y[(i * 32) % 256:][:32]
            F.mse_loss(net(xb), yb).backward()
            opt.step()

    for loop in (_bare_tensors("never"), _module("data", clear=False), _module("add_", clear=False), custom):
        found = _observe(loop)
        assert [f.code for f in found] == [CODE], found
        f = found[0]
        assert f.severity is Severity.ERROR
        assert f.evidence["updates_carried"] >= 3
        assert 2 * f.evidence["updates_carried"] >= f.evidence["updates_observed"]


def test_carried_gradient_norm_grows_and_names_the_weights():
    found = _observe(_module("data", clear=False))
    f = found[0]
    norms = [n for _, n in f.evidence["grad_norms"]]
    assert norms[-1] > norms[0]
    assert any(name.startswith("model") or "Linear" in name or "tensor" in name for name in f.evidence["param_names"])


def test_every_clearing_style_and_accumulation_are_quiet():
    for loop in (_bare_tensors("zero-after"), _bare_tensors("none-before"),
                 _bare_tensors("zero-after", accumulate=4), _module("data", clear=True),
                 _module("add_", clear=True)):
        assert _observe(loop) == []


def test_gradients_read_but_never_applied_are_quiet():
    """Saliency maps: the weights collect gradients that nobody clears, but they never change; the
    input is a fresh leaf each time."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 16), nn.ReLU(), nn.Linear(16, 1))
    x, _ = _data()

    def loop():
        for i in range(12):
            xb = x[i * 8:(i + 1) * 8].clone().requires_grad_(True)
            model(xb).sum().backward()
            _ = xb.grad.abs().mean()

    assert _observe(loop) == []


def test_an_optimizer_run_is_left_to_the_optimizer_check():
    torch.manual_seed(0)
    model = nn.Linear(5, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    x, y = _data()

    def loop():
        for i in range(12):
            F.mse_loss(model(x[i * 16:(i + 1) * 16]), y[i * 16:(i + 1) * 16]).backward()
            opt.step()

    assert _observe(loop) == []
