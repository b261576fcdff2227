"""lr.too-high for a hand-written update (no optimizer object): the update-to-weight ratio is measured
between backwards, in every common style (``p.data.add_(-lr * p.grad)`` on a module, bare tensors
``w -= lr * w.grad``, ``torch.autograd.grad`` then ``p.sub_``), so a diverging rate is named as the
rate, not only as a loss that explodes. Before, a run without optimizer never got an lr finding
(pytorch/examples regression and word_language_model, jcjohnson's two_layer_net: a 100x rate
headlined as numerics or as 'corrupted data or labels'). Healthy hand-written loops stay quiet."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from nndoctor.monitor import Observer
from nndoctor.monitor.checks.fit import Fit
from nndoctor.monitor.checks.loss_curve import LossCurve
from nndoctor.monitor.checks.lr import LearningRate

CHECKS = [Fit, LossCurve, LearningRate]
STYLES = ["module-data-add", "bare-tensors", "autograd-grad"]


def _data(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(512, 8, generator=g)
    return X, X @ torch.randn(8, 1, generator=g) + 0.3 * torch.randn(512, 1, generator=g)


def _manual(style: str, lr: float, steps: int = 150, seed: int = 0) -> Observer:
    X, y = _data(seed)
    torch.manual_seed(seed)
    with Observer(checks=CHECKS) as obs:
        if style == "module-data-add":  # pytorch/examples regression
            model = nn.Sequential(nn.Linear(8, 32), nn.Tanh(), nn.Linear(32, 1))
            for i in range(steps):
                j = (i * 32) % 512
                model.zero_grad()
                F.mse_loss(model(X[j:j + 32]), y[j:j + 32]).backward()
                for p in model.parameters():
                    p.data.add_(-lr * p.grad)
        elif style == "bare-tensors":  # jcjohnson two_layer_net_autograd
            w1 = (torch.randn(8, 32) / 8 ** 0.5).requires_grad_()
            w2 = (torch.randn(32, 1) / 32 ** 0.5).requires_grad_()
            for i in range(steps):
                j = (i * 32) % 512
                loss = (X[j:j + 32].mm(w1).clamp(min=0).mm(w2) - y[j:j + 32]).pow(2).mean()
                loss.backward()
                with torch.no_grad():
                    w1 -= lr * w1.grad
                    w2 -= lr * w2.grad
                    w1.grad.zero_()
                    w2.grad.zero_()
        else:  # functional weights, torch.autograd.grad
            W = [(torch.randn(8, 32) * 0.3).requires_grad_(), torch.zeros(32, requires_grad=True),
                 (torch.randn(32, 1) * 0.2).requires_grad_(), torch.zeros(1, requires_grad=True)]
            for i in range(steps):
                j = (i * 32) % 512
                out = torch.tanh(X[j:j + 32] @ W[0] + W[1]) @ W[2] + W[3]
                grads = torch.autograd.grad(F.mse_loss(out, y[j:j + 32]), W)
                with torch.no_grad():
                    for p, g in zip(W, grads):
                        p.sub_(lr * g)
    assert not obs.internal_errors, obs.internal_errors
    return obs


def _warned(obs: Observer) -> dict[str, str]:
    return {f.code: f.message for f in obs.report().at_least("warning")}


@pytest.mark.parametrize("style", STYLES)
def test_a_diverging_hand_written_update_names_the_rate(style):
    obs = _manual(style, lr=1.0)
    found = _warned(obs)
    assert "lr.too-high" in found, found
    assert "hand-written update" in found["lr.too-high"]
    assert "about 1x the gradient" in found["lr.too-high"]  # (the rate, 1.0, read off the updates)
    assert obs.report().headline().code == "lr.too-high"


@pytest.mark.parametrize("style", STYLES)
def test_healthy_hand_written_updates_stay_quiet(style):
    for seed in range(2):
        found = _warned(_manual(style, lr=0.05, seed=seed))
        assert not found, (seed, found)


def test_gradients_read_but_never_applied_give_no_ratio():
    """Saliency-like loops: backward() every step, no weight ever changes: nothing measured, no lr."""
    X, y = _data()
    model = nn.Sequential(nn.Linear(8, 16), nn.Tanh(), nn.Linear(16, 1))
    with Observer(checks=CHECKS) as obs:
        for i in range(120):
            xb = X[(i * 8) % 512:][:8].clone().requires_grad_()
            F.mse_loss(model(xb), y[(i * 8) % 512:][:8]).backward()
            model.zero_grad()
    assert all(row["max"] == 0 for row in obs.state.extra.get("nndoctor.update_ratios", ()))
    assert "lr.too-high" not in _warned(obs)


def test_with_an_optimizer_the_manual_probe_stays_idle():
    """Once an optimizer steps, its own probe measures the updates (no double rows)."""
    X, y = _data()
    model = nn.Sequential(nn.Linear(8, 32), nn.Tanh(), nn.Linear(32, 1))
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    with Observer(checks=CHECKS) as obs:
        for i in range(60):
            j = (i * 32) % 512
            opt.zero_grad()
            F.mse_loss(model(X[j:j + 32]), y[j:j + 32]).backward()
            opt.step()
    assert not obs.state.extra.get("nndoctor.manual_lr")
