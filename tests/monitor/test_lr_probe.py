"""A stalled run whose updates are tiny at a usual setting (plain SGD 0.01 on a deep net; Adagrad,
RMSprop or Adadelta at a tiny rate) is named from a probe that trains copies of the weights with a
larger step (lr.too-low) or with Adam (optimizer.plain-sgd-stalls); runs that learn, warm up, fine-tune
or already use a working setting stay quiet, and the run itself is untouched by the probe."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from helpers import sgd_run_with_checks

from nndoctor.monitor import Observer
from nndoctor.monitor.checks.fit import Fit
from nndoctor.monitor.checks.lr import LearningRate
from nndoctor.monitor.checks.lr_probe import StepSizeProbe

CODES = ("lr.too-low", "optimizer.plain-sgd-stalls")
CHECKS = [LearningRate, StepSizeProbe, Fit]  # (Fit: the constant-prediction loss the probe compares with)


def _digits(n=1200, d=64, k=10, seed=0):
    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(k, d, generator=g) * 1.5
    y = torch.randint(0, k, (n,), generator=g)
    return centres[y] + torch.randn(n, d, generator=g), y


def _deep(depth, act=nn.ReLU, d=64, k=10):
    layers = [nn.Linear(d, 64), act()]
    for _ in range(depth - 2):
        layers += [nn.Linear(64, 64), act()]
    return nn.Sequential(*layers, nn.Linear(64, k))


def _run_sequential(model, opt, steps=150, sched=None, x=None, y=None):
    """Style 1: a Sequential, index batches, a loss module."""
    if x is None:
        x, y = _digits()
    loss_fn = nn.CrossEntropyLoss()
    with Observer(checks=CHECKS) as obs:
        for s in range(steps):
            j = (s * 32) % (len(x) - 32)
            opt.zero_grad()
            loss = loss_fn(model(x[j:j + 32]), y[j:j + 32])
            loss.backward()
            opt.step()
            if sched is not None:
                sched.step()
    return obs


class _Tower(nn.Module):
    """Style 2: a module with a ModuleList of tanh layers, a DataLoader, F.cross_entropy."""

    def __init__(self, depth):
        super().__init__()
        self.inp = nn.Linear(64, 64)
        self.blocks = nn.ModuleList(nn.Linear(64, 64) for _ in range(depth))
        self.out = nn.Linear(64, 10)

    def forward(self, x):
        h = torch.tanh(self.inp(x))
        for block in self.blocks:
            h = torch.tanh(block(h))
        return self.out(h)


def _run_loader(model, make_opt, epochs=4):
    x, y = _digits()
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=32, shuffle=True,
                                         generator=torch.Generator().manual_seed(1))
    opt = make_opt(model.parameters())
    with Observer(checks=CHECKS) as obs:
        for _ in range(epochs):
            for xb, yb in loader:
                out = model(xb)
                loss = F.cross_entropy(out, yb)
                opt.zero_grad()
                loss.backward()
                opt.step()
    return obs


def _run_regression(make_opt, depth, steps=200):
    """Style 3: a deep regression MLP with a functional MSE and model.zero_grad()."""
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(3)
    x = torch.randn(2000, 16, generator=g)
    y = (x[:, :4].sum(1, keepdim=True) + 0.5 * x[:, 4:5] * x[:, 5:6])
    layers: list[nn.Module] = [nn.Linear(16, 48), nn.ReLU()]
    for _ in range(depth - 2):
        layers += [nn.Linear(48, 48), nn.ReLU()]
    model = nn.Sequential(*layers, nn.Linear(48, 1))
    opt = make_opt(model.parameters())
    with Observer(checks=CHECKS) as obs:
        for s in range(steps):
            j = (s * 64) % (len(x) - 64)
            model.zero_grad()
            loss = F.mse_loss(model(x[j:j + 64]), y[j:j + 64])
            loss.backward()
            opt.step()
    return obs


def _found(obs):
    return [f for f in obs.findings if f.code in CODES]


# ---------------------------------------------------------------- faults
def test_plain_sgd_on_a_deep_relu_sequential_is_named_with_the_probe():
    torch.manual_seed(0)
    model = _deep(8)
    obs = _run_sequential(model, torch.optim.SGD(model.parameters(), lr=0.01))
    found = _found(obs)
    assert found, [f.code for f in obs.findings]
    ev = found[0].evidence
    assert ev["update_ratio_median"] < 1e-4 and ev["probe_steps"] == 100
    now = ev["probe_losses"]["now"]
    best = ev["probe_losses"][ev["probe_best"]]
    assert best[1] <= 0.75 * best[0] and now[1] > 0.9 * now[0]
    assert "on copies" in found[0].message


def test_plain_sgd_on_a_deep_tanh_tower_with_a_loader_is_named():
    torch.manual_seed(0)
    obs = _run_loader(_Tower(6), lambda p: torch.optim.SGD(p, lr=0.01))
    assert _found(obs), [f.code for f in obs.findings]


def test_plain_sgd_on_a_deep_regression_mlp_is_named():
    obs = _run_regression(lambda p: torch.optim.SGD(p, lr=0.005), depth=8)
    assert _found(obs), [f.code for f in obs.findings]


@pytest.mark.parametrize("make_opt", [
    lambda p: torch.optim.Adagrad(p, lr=1e-4),
    lambda p: torch.optim.RMSprop(p, lr=1e-5),
    lambda p: torch.optim.Adadelta(p, lr=1e-3),
], ids=["adagrad-1e-4", "rmsprop-1e-5", "adadelta-1e-3"])
def test_adaptive_optimizer_at_a_tiny_rate_is_named_lr_too_low(make_opt):
    torch.manual_seed(0)
    obs = _run_loader(nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10)), make_opt)
    found = [f for f in obs.findings if f.code == "lr.too-low"]
    assert found, [f.code for f in obs.findings]


def test_the_probe_leaves_the_run_untouched():
    """The same script with and without the probe trains to the very same weights."""
    a, obs, ra = sgd_run_with_checks(lambda: _deep(8), _digits, CHECKS)
    b, _, rb = sgd_run_with_checks(lambda: _deep(8), _digits, [LearningRate, Fit])
    assert _found(obs)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    assert torch.equal(ra, rb)  # (the RNG too)
    assert len(obs.state.optimizers) == 1  # the probe's optimizers were never seen as the user's


# ---------------------------------------------------------------- healthy lookalikes
def test_plain_sgd_on_a_shallow_net_that_learns_is_quiet():
    torch.manual_seed(0)
    model = _deep(2)
    obs = _run_sequential(model, torch.optim.SGD(model.parameters(), lr=0.01))
    assert not _found(obs)


def test_sgd_with_momentum_on_a_net_that_learns_is_quiet():
    torch.manual_seed(0)
    model = _deep(3)
    obs = _run_sequential(model, torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9))
    assert not _found(obs)


def test_adam_on_the_deep_net_is_quiet():
    torch.manual_seed(0)
    model = _deep(8)
    obs = _run_sequential(model, torch.optim.Adam(model.parameters(), lr=1e-3))
    assert not _found(obs)


def test_healthy_adagrad_is_quiet():
    torch.manual_seed(0)
    obs = _run_loader(nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10)),
                      lambda p: torch.optim.Adagrad(p, lr=0.05))
    assert not _found(obs)


def test_a_warm_up_phase_is_quiet():
    torch.manual_seed(0)
    model = _deep(3)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    sched = torch.optim.lr_scheduler.LinearLR(opt, start_factor=1e-3, total_iters=300)
    obs = _run_sequential(model, opt, steps=120, sched=sched)
    assert not _found(obs)


def test_fine_tuning_a_trained_model_with_a_small_rate_is_quiet():
    torch.manual_seed(0)
    model = _deep(3)
    x, y = _digits()
    pre = torch.optim.Adam(model.parameters(), lr=3e-3)
    for s in range(400):  # "pretrained" before the watched run
        j = (s * 64) % (len(x) - 64)
        pre.zero_grad()
        F.cross_entropy(model(x[j:j + 64]), y[j:j + 64]).backward()
        pre.step()
    obs = _run_sequential(model, torch.optim.SGD(model.parameters(), lr=1e-3), x=x, y=y)
    assert not _found(obs)


def test_adagrad_at_a_tiny_rate_in_a_regression_loop_is_named_lr_too_low():
    obs = _run_regression(lambda p: torch.optim.Adagrad(p, lr=1e-4), depth=3)
    assert [f for f in obs.findings if f.code == "lr.too-low"], [f.code for f in obs.findings]


def test_rmsprop_at_a_tiny_rate_on_a_sequential_is_named_lr_too_low():
    torch.manual_seed(0)
    model = _deep(3)
    obs = _run_sequential(model, torch.optim.RMSprop(model.parameters(), lr=1e-5))
    assert [f for f in obs.findings if f.code == "lr.too-low"], [f.code for f in obs.findings]


# ---------------------------------------------------------------- dropout: the probe replays the run's masks
def _deep_dropout(depth, p=0.2, functional=False):
    """A deep ReLU stack with dropout after each hidden layer (Keras' Dense + Dropout), as layers or F.dropout."""
    class Drop(nn.Module):
        def forward(self, x):
            return F.dropout(x, p, self.training)

    layers: list[nn.Module] = [nn.Linear(64, 64), nn.ReLU(), Drop() if functional else nn.Dropout(p)]
    for _ in range(depth - 2):
        layers += [nn.Linear(64, 64), nn.ReLU(), Drop() if functional else nn.Dropout(p)]
    return nn.Sequential(*layers, nn.Linear(64, 10))


@pytest.mark.parametrize("functional", [False, True], ids=["nn.Dropout", "F.dropout"])
def test_plain_sgd_on_a_deep_net_with_dropout_is_named(functional):
    torch.manual_seed(0)
    model = _deep_dropout(8, functional=functional)
    obs = _run_sequential(model, torch.optim.SGD(model.parameters(), lr=0.01))
    assert _found(obs), [f.code for f in obs.findings]


def test_adadelta_at_a_tiny_rate_with_dropout_in_a_loader_is_named():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Dropout(0.3), nn.Linear(32, 10))
    obs = _run_loader(model, lambda p: torch.optim.Adadelta(p, lr=1e-3))
    assert [f for f in obs.findings if f.code == "lr.too-low"], [f.code for f in obs.findings]


def test_a_healthy_dropout_net_is_quiet_and_untouched():
    """Adam on the same deep dropout net learns: quiet; the probe's replays never shift the run's masks."""
    a, obs, ra = sgd_run_with_checks(lambda: _deep_dropout(8), _digits, CHECKS)
    b, _, rb = sgd_run_with_checks(lambda: _deep_dropout(8), _digits, [LearningRate, Fit])
    assert _found(obs)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters())) and torch.equal(ra, rb)
    torch.manual_seed(0)
    model = _deep_dropout(8)
    assert not _found(_run_sequential(model, torch.optim.Adam(model.parameters(), lr=1e-3)))
