"""A loss that runs off to large negative values (an objective unbounded below: the sign of a
log-likelihood or of an error lost) is loss-curve.explodes with the sign as its first cause, not a
too-high learning rate: a lower rate only slows the run to -inf. A loss exploding upwards stays lr."""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F
from _dyn_helpers import blobs, mlp, train

from nndoctor.monitor import Observer
from nndoctor.monitor.checks.loss_curve import LossCurve
from nndoctor.monitor.checks.lr import LearningRate
from nndoctor.monitor.curves import analyze

CHECKS = [LossCurve, LearningRate]


def _codes(obs):
    return {f.code for f in obs.report().at_least("warning")}


def _sign_first(obs):
    found = [f for f in obs.findings if f.code == "loss-curve.explodes"]
    assert found, [(f.code, f.message) for f in obs.findings]
    return "sign" in found[0].evidence["likely_causes"][0]


class _Gauss(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Linear(1, 32), nn.Tanh())
        self.mu, self.logvar = nn.Linear(32, 1), nn.Linear(32, 1)

    def forward(self, x):
        h = self.body(x)
        return self.mu(h), self.logvar(h)


def test_gaussian_log_likelihood_minimised_in_a_function_adam():
    torch.manual_seed(0)
    x = torch.linspace(-2, 2, 512)[:, None]
    y = torch.sin(x) + 0.1 * torch.randn_like(x)
    model = _Gauss()
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)

    def loop():
        for _ in range(150):
            idx = torch.randint(0, 512, (64,))
            mu, lv = model(x[idx])
            log_lik = (-0.5 * (lv + (y[idx] - mu) ** 2 / lv.exp() + math.log(2 * math.pi))).mean()
            opt.zero_grad()
            log_lik.backward()  # the minus sign of the NLL lost
            opt.step()

    with Observer(checks=CHECKS) as obs:
        loop()
    assert "lr.too-high" not in _codes(obs) and "loss-curve.explodes" in _codes(obs)
    assert _sign_first(obs)


def test_negated_error_sequential_sgd_regression():
    torch.manual_seed(0)
    X = torch.randn(1024, 8)
    y = X @ torch.randn(8, 1)
    model = nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Linear(32, 1))
    opt = torch.optim.SGD(model.parameters(), lr=1e-2)

    def loop():
        for i in range(150):
            j = (i * 32) % 992
            loss = -F.mse_loss(model(X[j:j + 32]), y[j:j + 32])  # "maximise the fit"
            opt.zero_grad()
            loss.backward()
            opt.step()

    with Observer(checks=CHECKS) as obs:
        loop()
    assert "lr.too-high" not in _codes(obs) and "loss-curve.explodes" in _codes(obs)
    assert _sign_first(obs)


def test_negated_hinge_margin_in_a_trainer_class_rmsprop():
    X, y = blobs(n=1024)

    class Trainer:
        def __init__(self) -> None:
            self.model = mlp()
            self.opt = torch.optim.RMSprop(self.model.parameters(), lr=1e-2)

        def step(self, xb, yb):
            scores = self.model(xb)
            margin = scores.gather(1, yb[:, None]) - scores.mean(1, keepdim=True)
            loss = -(1.0 - margin).clamp(min=0).mean()  # the sign of the hinge loss lost
            self.opt.zero_grad()
            loss.backward()
            self.opt.step()

    t = Trainer()
    with Observer(checks=CHECKS) as obs:
        for i in range(150):
            j = (i * 32) % 992
            t.step(X[j:j + 32], y[j:j + 32])
    assert "lr.too-high" not in _codes(obs)
    assert _sign_first(obs)


def test_upward_explosion_is_still_a_learning_rate_and_the_curve_tells_the_direction():
    X, y = blobs()
    model = mlp()
    opt = torch.optim.SGD(model.parameters(), lr=5.0)
    with Observer(checks=CHECKS) as obs:
        train(model, opt, X, y, 150)
    assert "lr.too-high" in _codes(obs)
    up = analyze(list(range(1, 61)), [1.0 * 1.2 ** i for i in range(60)]).symptoms["explodes"]
    down = analyze(list(range(1, 61)), [-1.0 * 1.2 ** i for i in range(60)]).symptoms["explodes"]
    assert not up["falls"] and down["falls"]
