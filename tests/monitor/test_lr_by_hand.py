"""lr of a hand-written update (no optimizer object): measured between two backwards.

Tutorial and ported code updates its weights by hand after ``loss.backward()``; a rate far too
high there got only the symptom (the loss exploded or plateaued), never the rate. Four styles of
the update, each too high and at a working rate, plus hand-written updates that are not plain SGD.
"""

from __future__ import annotations

from typing import Callable

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from _dyn_helpers import blobs

from nndoctor.monitor import Observer
from nndoctor.monitor.checks._manual_updates import MANUAL_LR_KEY, graph_leaves
from nndoctor.monitor.checks.fit import Fit
from nndoctor.monitor.checks.loss_curve import LossCurve
from nndoctor.monitor.checks.lr import HAND_WRITTEN, LearningRate

CHECKS = [Fit, LossCurve, LearningRate]
STEPS = 240


def _raw_tensors(lr: float) -> None:
    """jcjohnson style: weight tensors, ``w -= lr * w.grad`` under no_grad, grads zeroed after."""
    X, y = blobs()
    torch.manual_seed(0)
    w1 = (torch.randn(16, 64) * 0.25).requires_grad_()
    b1 = torch.zeros(64, requires_grad=True)
    w2 = (torch.randn(64, 4) * 0.125).requires_grad_()
    for i in range(STEPS):
        j = (i * 32) % (len(X) - 32)
        loss = F.cross_entropy(torch.relu(X[j:j + 32] @ w1 + b1) @ w2, y[j:j + 32])
        loss.backward()
        with torch.no_grad():
            for p in (w1, b1, w2):
                p -= lr * p.grad
                p.grad.zero_()


def _module_data_add(lr: float) -> None:
    """A module's parameters, ``p.data.add_(p.grad, alpha=-lr)``, model.zero_grad() before backward."""
    X, y = blobs()
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(16, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 4))
    for i in range(STEPS):
        j = (i * 32) % (len(X) - 32)
        loss = nn.CrossEntropyLoss()(model(X[j:j + 32]), y[j:j + 32])
        model.zero_grad()
        loss.backward()
        for p in model.parameters():
            p.data.add_(p.grad, alpha=-lr)


def _data_reassigned(lr: float) -> None:
    """hunkim style: ``p.data = p.data - lr * p.grad.data`` on a class-based model, tanh units."""

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.l1, self.l2 = nn.Linear(16, 48), nn.Linear(48, 4)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.l2(torch.tanh(self.l1(x)))

    X, y = blobs(seed=1)
    torch.manual_seed(1)
    net = Net()
    for _epoch in range(STEPS // 60):
        for j in range(0, 60 * 32, 32):
            loss = F.cross_entropy(net(X[j:j + 32]), y[j:j + 32])
            loss.backward()
            for p in net.parameters():
                p.data = p.data - lr * p.grad.data
                p.grad.data.zero_()


def _sgd_function(lr: float) -> None:
    """d2l style: a ``sgd(params, lr, batch_size)`` function on a summed loss (divided by the batch)."""

    def sgd(params: list[torch.Tensor], rate: float, batch_size: int) -> None:
        with torch.no_grad():
            for param in params:
                param -= rate * param.grad / batch_size
                param.grad.zero_()

    X, y = blobs(seed=2)
    torch.manual_seed(2)
    W = torch.normal(0, 0.1, size=(16, 32), requires_grad=True)
    b = torch.zeros(32, requires_grad=True)
    V = torch.normal(0, 0.1, size=(32, 4), requires_grad=True)
    for i in range(STEPS):
        j = (i * 32) % (len(X) - 32)
        loss = F.cross_entropy(torch.relu(X[j:j + 32] @ W + b) @ V, y[j:j + 32], reduction="sum")
        loss.backward()
        sgd([W, b, V], lr, 32)


STYLES: dict[str, tuple[Callable[[float], None], float, float, float]] = {
    # style: (loop, a rate far too high, a working rate, what the rate is divided by in the update)
    "raw-tensors": (_raw_tensors, 20.0, 0.1, 1.0),
    "module-data-add": (_module_data_add, 20.0, 0.05, 1.0),
    "data-reassigned": (_data_reassigned, 30.0, 0.1, 1.0),
    "sgd-function": (_sgd_function, 40.0, 0.1, 32.0),  # (the gradient of a summed loss / the batch)
}


def _observe(loop: Callable[[float], None], lr: float) -> Observer:
    with Observer(checks=CHECKS) as obs:
        loop(lr)
    return obs


@pytest.mark.parametrize("style", sorted(STYLES))
def test_a_hand_written_update_at_a_far_too_high_rate_names_the_rate(style):
    loop, high, _, per = STYLES[style]
    obs = _observe(loop, high)
    found = obs.report().by_code("lr.too-high")
    assert found, [(f.code, f.message) for f in obs.findings]
    (f,) = found
    assert f.location == HAND_WRITTEN and f.severity.value in ("warning", "error")
    measured = obs.state.extra[MANUAL_LR_KEY]["lr"]
    assert 0.8 * high / per <= measured <= 1.25 * high / per  # the rate the script uses, read off its updates
    assert f"about {f.evidence['lr']}x the gradient" in f.message
    assert float(f.evidence["suggest_high"]) < high / per
    assert f.evidence["update_ratio_peak"] > 0.3
    # the loss curve's symptom (explodes, plateaus) is not the headline: the rate is
    headline = obs.report().headline()
    assert headline is not None and headline.code == "lr.too-high"


@pytest.mark.parametrize("style", sorted(STYLES))
def test_a_hand_written_update_at_a_working_rate_stays_quiet(style):
    loop, _, good, per = STYLES[style]
    obs = _observe(loop, good)
    assert not obs.report().at_least("warning"), [(f.code, f.message) for f in obs.findings]
    measured = obs.state.extra[MANUAL_LR_KEY]["lr"]
    assert 0.8 * good / per <= measured <= 1.25 * good / per


def test_hand_written_momentum_stays_quiet():
    """A velocity update is the gradient scaled only while the gradients agree: the rate read off
    it lies between lr and lr / (1 - momentum), and nothing is said."""
    X, y = blobs()
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(16, 64), nn.ReLU(), nn.Linear(64, 4))
    vel = [torch.zeros_like(p) for p in model.parameters()]
    with Observer(checks=CHECKS) as obs:
        for i in range(STEPS):
            j = (i * 32) % (len(X) - 32)
            loss = F.cross_entropy(model(X[j:j + 32]), y[j:j + 32])
            model.zero_grad()
            loss.backward()
            with torch.no_grad():
                for p, v in zip(model.parameters(), vel):
                    v.mul_(0.9).add_(p.grad)
                    p.sub_(0.02 * v)
    assert not obs.report().at_least("warning")
    assert obs.state.extra.get("nndoctor.update_ratios")
    est = obs.state.extra.get(MANUAL_LR_KEY)  # (where the velocity is still along the gradient)
    assert est is None or 0.02 * 0.8 <= est["lr"] <= 0.02 / (1 - 0.9) * 1.25


def test_gradients_read_without_an_update_are_no_rate():
    """Backwards whose gradients are only read (input saliency of a trained model): no updates,
    nothing to judge."""
    X, _ = blobs()
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(16, 32), nn.Tanh(), nn.Linear(32, 4))
    with Observer(checks=CHECKS) as obs:
        for i in range(60):
            x = X[i:i + 8].clone().requires_grad_()
            model(x).max(1).values.sum().backward()
            model.zero_grad()
    assert not obs.report().at_least("warning")
    assert MANUAL_LR_KEY not in obs.state.extra


def test_with_an_optimizer_the_backward_probe_stays_off():
    X, y = blobs()
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 4))
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    with Observer(checks=CHECKS) as obs:
        for i in range(60):
            j = (i * 32) % (len(X) - 32)
            opt.zero_grad()
            F.cross_entropy(model(X[j:j + 32]), y[j:j + 32]).backward()
            opt.step()
            if i == 3:  # (the first backward came before the optimizer's first step: its copy is let go)
                assert not any(getattr(p, "_post_accumulate_grad_hooks", None) for p in model.parameters())
    assert MANUAL_LR_KEY not in obs.state.extra


def test_graph_leaves_finds_raw_tensors_and_parameters():
    w = torch.randn(3, 2, requires_grad=True)
    lin = nn.Linear(2, 1)
    loss = lin(torch.randn(4, 3) @ w).sum()
    leaves = {id(t) for t in graph_leaves(loss)}
    assert leaves == {id(w), id(lin.weight), id(lin.bias)}
    assert graph_leaves(torch.randn(2).sum()) == []
