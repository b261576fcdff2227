"""A loss curve's claims rest on the loss's own scale: single batches that spike (heavy-tailed regression
targets) are not an explosion or an oscillation, and a signed objective balanced at zero (contrastive
divergence) has no floor to measure an explosion, a rise or a swing from. The faulty twins (a learning
rate 100x too high on the same data, an RBM at 100x its rate) are still named."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from nndoctor.findings import Severity
from nndoctor.monitor import Observer
from nndoctor.monitor.checks.fit import Fit
from nndoctor.monitor.checks.loss_curve import LossCurve
from nndoctor.monitor.checks.lr import LearningRate
from nndoctor.monitor.curves import analyze, hovers_around_zero, isolated_spikes

CHECKS = [Fit, LossCurve, LearningRate]


def _curve(values):
    values = [float(x) for x in values]
    return analyze(list(range(1, len(values) + 1)), values)


def _heavy_batches(n=400, seed=0):
    """Batch MSEs of heavy-tailed targets: a level falling from 10 to 3, each batch's loss its level times
    (1 + a squared Cauchy draw / 64): most near the level, a few 10-10000x it, independently."""
    r = np.random.default_rng(seed)
    level = np.linspace(10.0, 3.0, n)
    return level * (1.0 + r.standard_cauchy(n) ** 2 / 64.0) * np.exp(0.2 * r.standard_normal(n))


def _with_spike(v, at, factor):
    v = v.copy()
    v[at] = factor * v[:5].max()
    return v


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_one_batch_a_thousand_times_the_start_is_no_explosion(seed):
    v = _with_spike(_heavy_batches(seed=seed), 200, 3e3)
    assert not _curve(v).has("explodes")


def test_an_explosion_that_holds_or_ramps_is_still_one():
    v = _heavy_batches()
    held = v.copy()
    held[200:204] = 3e3 * v[:5].max()  # the weights knocked off: four steps far above the start
    assert _curve(held).has("explodes")
    ramp = np.concatenate([v[:100], v[100] * 4.0 ** np.arange(1, 12)])  # climbs to the end of the run
    assert _curve(ramp).has("explodes")


def test_isolated_spikes_tell_independent_batches_from_runs():
    r = np.random.default_rng(0)
    iid = r.random(300) < 0.2
    assert isolated_spikes(np.zeros(300), iid)
    runs = np.zeros(300, dtype=bool)
    for s in range(10, 290, 25):
        runs[s:s + 4] = True  # bursts of 4 steps: weights that stay off
    assert not isolated_spikes(np.zeros(300), runs)


def test_a_signed_objective_balanced_at_zero_has_no_floor_to_judge():
    """Contrastive divergence's free-energy difference: ~0 at initialisation (a symmetric model), then
    swinging by several units on both sides of zero, drifting up as the chains catch up with the data."""
    r = np.random.default_rng(0)
    v = np.concatenate([[-0.003, -7.5, -7.5, -3.3], 0.8 * r.standard_normal(300) + np.linspace(-0.5, 2.0, 300)])
    assert hovers_around_zero(v)
    a = _curve(v)
    assert a.symptoms == {}, a.symptoms
    # its faulty twin blows up by 100s of times its own magnitude: still an explosion
    boom = v.copy()
    boom[1:4] = [-130.0, 1200.0, 1360.0]  # (the RBM at 100x its rate: -0.003, -130, 1232, 1362, then ~1)
    assert _curve(boom).has("explodes")
    # a loss that passes below zero once (a density's NLL) or runs off to -inf is not balanced at zero
    nll = np.linspace(3.0, -2.0, 300) + 0.1 * r.standard_normal(300)
    assert not hovers_around_zero(nll)
    assert _curve(-(1.05 ** np.arange(200))).has("explodes")


def _regression(noise: str, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    X = torch.rand(4000, 5, generator=g) * 4 - 2
    f = torch.sin(X[:, 0]) * 2 + X[:, 1] * X[:, 2] - 0.5 * X[:, 3] ** 2
    u = torch.rand(4000, generator=g).clamp(1e-6, 1 - 1e-6)
    if noise == "cauchy":
        y = f + 0.3 * torch.tan(torch.pi * (u - 0.5))
    elif noise == "lognormal":
        y = torch.exp(0.5 * f + 1.6 * torch.randn(4000, generator=g))
    else:  # Student-t with 1.2 degrees of freedom, by its ratio definition
        chi = torch.distributions.Chi2(torch.tensor(1.2)).sample((4000,))
        y = f + 0.4 * torch.randn(4000, generator=g) / (chi / 1.2).sqrt()
    return X, y.unsqueeze(1)


def _fit(noise: str, style: str, lr: float, steps: int = 300):
    torch.manual_seed(0)
    X, y = _regression(noise)
    if style == "sequential":
        model = nn.Sequential(nn.Linear(5, 64), nn.ReLU(), nn.Linear(64, 1))
    else:
        model = nn.Sequential(nn.Linear(5, 48), nn.GELU(), nn.Linear(48, 48), nn.GELU(), nn.Linear(48, 1))
    opt = torch.optim.Adam(model.parameters(), lr=lr) if style != "adamw" else torch.optim.AdamW(model.parameters(), lr=lr)
    crit = nn.MSELoss() if style != "l1" else nn.L1Loss()

    def loop():
        for _ in range(steps):
            idx = torch.randint(0, 4000, (64,))
            loss = crit(model(X[idx]), y[idx]) if style != "functional" else F.mse_loss(model(X[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()

    with Observer(checks=CHECKS) as obs:
        loop()
    return {f.code for f in obs.report().at_least("warning")}


CASES = [("student", "sequential", 1e-3), ("cauchy", "functional", 2e-3), ("lognormal", "adamw", 3e-3)]


@pytest.mark.parametrize("noise,style,lr", CASES)
def test_heavy_tailed_regression_at_a_normal_rate_is_quiet(noise, style, lr):
    assert _fit(noise, style, lr) == set()


@pytest.mark.parametrize("noise,style,lr", CASES[1:])
def test_heavy_tailed_regression_at_100x_the_rate_names_the_rate(noise, style, lr):
    # (the Student-t twin at 100x is not named by the old code either: its loss neither swings nor rises)
    assert "lr.too-high" in _fit(noise, style, 100 * lr)


def test_rbm_contrastive_divergence_is_quiet_and_its_100x_rate_is_named():
    torch.manual_seed(0)
    V = (torch.rand(1000, 36) < torch.linspace(0.1, 0.9, 36)).float()

    def run(lr):
        W = nn.Parameter(torch.randn(64, 36) * 0.01)
        b, c = nn.Parameter(torch.zeros(36)), nn.Parameter(torch.zeros(64))
        opt = torch.optim.SGD([W, b, c], lr=lr, momentum=0.5)

        def free_energy(v):
            return -(v @ b) - F.softplus(F.linear(v, W, c)).sum(1)

        chains = torch.bernoulli(torch.full((100, 36), 0.5))
        with Observer(checks=CHECKS) as obs:
            for _ in range(3):
                for vb in V[torch.randperm(1000)].split(100):
                    with torch.no_grad():
                        h = torch.bernoulli(torch.sigmoid(F.linear(chains, W, c)))
                        chains = torch.bernoulli(torch.sigmoid(h @ W + b))
                    loss = free_energy(vb).mean() - free_energy(chains).mean()
                    opt.zero_grad()
                    loss.backward()
                    opt.step()
        return obs

    ok = run(0.05)
    assert not ok.report().at_least("warning"), [(f.code, f.message) for f in ok.report().at_least("warning")]
    bad = run(5.0)
    codes = {f.code for f in bad.report().at_least("warning")}
    assert codes & {"lr.too-high", "loss-curve.explodes"}, codes
    assert all(f.severity is not Severity.INFO for f in bad.report().at_least("warning"))
