"""The step-size probe replays a stalled run's batches to check they give the run's own loss; a model
with dropout draws new masks on each forward, so the replay restores the random state the run's forward
drew from (the same masks). Stalls in models with dropout are named in three styles; a model with
dropout that learns stays quiet, and the run (weights and RNG) is untouched by the probe."""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F
from helpers import sgd_run_with_checks

from nndoctor.monitor import Observer
from nndoctor.monitor.checks.fit import Fit
from nndoctor.monitor.checks.lr import LearningRate
from nndoctor.monitor.checks.lr_probe import StepSizeProbe

CODES = ("lr.too-low", "optimizer.plain-sgd-stalls")
CHECKS = [LearningRate, StepSizeProbe, Fit]


def _data(n=1200, d=32, k=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(k, d, generator=g) * 1.5
    y = torch.randint(0, k, (n,), generator=g)
    return centres[y] + torch.randn(n, d, generator=g), y


def _found(obs):
    return [f for f in obs.findings if f.code in CODES]


def _sequential(depth=6, p=0.2):
    layers: list[nn.Module] = [nn.Linear(32, 64), nn.ReLU(), nn.Dropout(p)]
    for _ in range(depth - 2):
        layers += [nn.Linear(64, 64), nn.ReLU(), nn.Dropout(p)]
    return nn.Sequential(*layers, nn.Linear(64, 4))


def _run_index(model, opt, steps=160):
    """Style 1: a Sequential with nn.Dropout, index batches, a loss module."""
    x, y = _data()
    loss_fn = nn.CrossEntropyLoss()
    with Observer(checks=CHECKS) as obs:
        for s in range(steps):
            j = (s * 32) % (len(x) - 32)
            opt.zero_grad()
            loss_fn(model(x[j:j + 32]), y[j:j + 32]).backward()
            opt.step()
    return obs


class _FunctionalDropout(nn.Module):
    """Style 2: F.dropout(training=self.training) inside forward, a DataLoader, F.cross_entropy."""

    def __init__(self, depth=5):
        super().__init__()
        self.inp = nn.Linear(32, 64)
        self.hidden = nn.ModuleList(nn.Linear(64, 64) for _ in range(depth))
        self.out = nn.Linear(64, 4)

    def forward(self, x):
        h = torch.tanh(self.inp(x))
        for layer in self.hidden:
            h = F.dropout(torch.tanh(layer(h)), 0.3, training=self.training)
        return self.out(h)


def _run_loader(model, opt, epochs=5):
    x, y = _data()
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=32, shuffle=True,
                                         generator=torch.Generator().manual_seed(1))
    with Observer(checks=CHECKS) as obs:
        for _ in range(epochs):
            model.train()
            for xb, yb in loader:
                loss = F.cross_entropy(model(xb), yb)
                opt.zero_grad()
                loss.backward()
                opt.step()
    return obs


class _Keras(nn.Module):
    """Style 3: a Keras-like block list (Dense -> Dropout) and a fit() helper with model.zero_grad()."""

    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(32, 128), nn.ReLU(), nn.Dropout(0.5),
                                  nn.Linear(128, 128), nn.ReLU(), nn.Dropout(0.5))
        self.head = nn.Linear(128, 4)

    def forward(self, x):
        return self.head(self.body(x))


def _fit(model, opt, epochs=6, batch_size=48):
    x, y = _data(seed=2)
    loss_fn = nn.CrossEntropyLoss()
    with Observer(checks=CHECKS) as obs:
        for _ in range(epochs):
            perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(0))
            for i in range(0, len(x), batch_size):
                b = perm[i:i + batch_size]
                model.zero_grad()
                loss_fn(model(x[b]), y[b]).backward()
                opt.step()
    return obs


# ---------------------------------------------------------------- faults
def test_plain_sgd_stall_on_a_sequential_with_dropout_is_named():
    torch.manual_seed(0)
    model = _sequential()
    obs = _run_index(model, torch.optim.SGD(model.parameters(), lr=0.01))
    assert _found(obs), [f.code for f in obs.findings]
    assert "on copies" in _found(obs)[0].message


def test_plain_sgd_stall_with_functional_dropout_and_a_loader_is_named():
    torch.manual_seed(0)
    model = _FunctionalDropout()
    obs = _run_loader(model, torch.optim.SGD(model.parameters(), lr=0.01))
    assert _found(obs), [f.code for f in obs.findings]


def test_plain_sgd_at_1e_3_in_a_keras_style_fit_with_dropout_is_named():
    torch.manual_seed(0)
    model = _Keras()
    obs = _fit(model, torch.optim.SGD(model.parameters(), lr=1e-3))
    assert _found(obs), [f.code for f in obs.findings]


def test_the_probe_leaves_a_run_with_dropout_untouched():
    a, obs, ra = sgd_run_with_checks(_sequential, _data, CHECKS)
    b, _, rb = sgd_run_with_checks(_sequential, _data, [LearningRate, Fit])
    assert _found(obs)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    assert torch.equal(ra, rb)


# ---------------------------------------------------------------- healthy lookalikes
def test_sgd_with_momentum_and_dropout_that_learns_is_quiet():
    torch.manual_seed(0)
    model = _sequential(depth=3)
    obs = _run_index(model, torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9))
    assert not _found(obs), [f.message for f in _found(obs)]


def test_adam_with_heavy_dropout_in_a_keras_style_fit_is_quiet():
    torch.manual_seed(0)
    model = _Keras()
    obs = _fit(model, torch.optim.Adam(model.parameters(), lr=1e-3))
    assert not _found(obs), [f.message for f in _found(obs)]
