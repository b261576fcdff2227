"""grad-flow.almost-all-frozen: a handful of values train on a frozen model, the loss at chance."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from _dyn_helpers import blobs, mlp

from nndoctor.monitor import Observer
from nndoctor.monitor.checks.almost_frozen import AlmostAllFrozen
from nndoctor.monitor.checks.fit import Fit
from nndoctor.monitor.checks.loss_curve import LossCurve

CHECKS = [Fit, LossCurve, AlmostAllFrozen]
CODE = "grad-flow.almost-all-frozen"


def _loop(model, params, X, y, steps=150, scale=None, loss_fn=F.cross_entropy, opt_cls=torch.optim.SGD, lr=0.1):
    opt = opt_cls(params, lr=lr)
    for i in range(steps):
        j = (i * 32) % (len(X) - 32)
        out = model(X[j:j + 32])
        if scale is not None:
            out = out * scale
        loss = loss_fn(out, y[j:j + 32])
        opt.zero_grad()
        loss.backward()
        opt.step()


class _Scaled(nn.Module):
    """A regression MLP with a learned output affine (scale and shift) of its own."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.body = nn.Sequential(nn.Linear(16, 64), nn.Tanh(), nn.Linear(64, 64), nn.Tanh(), nn.Linear(64, 1))
        self.scale = nn.Parameter(torch.ones(1))
        self.shift = nn.Parameter(torch.zeros(1))

    def forward(self, x):
        return self.body(x) * self.scale + self.shift


def _codes(obs):
    return {f.code for f in obs.report().at_least("warning")}


@pytest.mark.parametrize("style", ["unfreeze-filter-matches-nothing", "whole-model-requires-grad-false",
                                   "module-scale-and-shift"])
def test_a_frozen_model_with_a_few_trained_values_is_found(style):
    X, y = blobs(seed=6)
    with Observer(checks=CHECKS) as obs:
        if style == "unfreeze-filter-matches-nothing":  # f33: names of an nn.Sequential are "0.weight"...
            model = mlp()
            for p in model.parameters():
                p.requires_grad = False
            for name, p in model.named_parameters():
                if name.startswith("classifier"):
                    p.requires_grad = True
            t = nn.Parameter(torch.ones(1))
            _loop(model, [*model.parameters(), t], X, y, scale=t)
        elif style == "whole-model-requires-grad-false":  # meant: the backbone only
            model = mlp()
            model.requires_grad_(False)
            t, b = nn.Parameter(torch.ones(1)), nn.Parameter(torch.zeros(4))
            _loop(lambda x: model(x) + b, [t, b], X, y, scale=t, opt_cls=torch.optim.Adam, lr=1e-2)
        else:  # a regression target; everything but the module's own scale/shift frozen
            model = _Scaled()
            for m in model.body.modules():
                m.requires_grad_(False)
            target = torch.tanh(X[:, :3]).sum(1, keepdim=True)
            _loop(model, model.parameters(), X, target, loss_fn=F.mse_loss, lr=1e-2)
    found = obs.report().by_code(CODE)
    assert found, [(f.code, f.message) for f in obs.findings]
    assert found[0].first_step <= 150


def test_deliberate_small_trained_parts_stay_quiet():
    X, y = blobs(seed=7)
    # temperature scaling after training: the model was trained first, the loss starts low
    model = mlp()
    with Observer(checks=CHECKS) as obs:
        _loop(model, model.parameters(), X, y, steps=150, opt_cls=torch.optim.Adam, lr=3e-3)
        model.requires_grad_(False)
        t = nn.Parameter(torch.ones(1))
        _loop(model, [t], X, y, steps=80, scale=t, opt_cls=torch.optim.Adam, lr=1e-2)
    assert CODE not in _codes(obs)
    # linear probing of a frozen random backbone, BitFit (biases only), an echo-state readout
    for kind in ("linear-probe", "bitfit", "reservoir"):
        model = mlp()
        if kind == "bitfit":
            params = [p for n, p in model.named_parameters() if n.endswith("bias")]
            for n, p in model.named_parameters():
                p.requires_grad = n.endswith("bias")
        else:
            model[:-1].requires_grad_(False)
            params = list(model[-1].parameters())
            if kind == "reservoir":
                model[0].weight.data.mul_(3.0)  # a fixed random expansion, only the readout learns
        with Observer(checks=CHECKS) as obs:
            _loop(model, params, X, y, steps=150)
        assert CODE not in _codes(obs), kind
