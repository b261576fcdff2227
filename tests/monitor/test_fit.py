"""fit: overfitting from the script's own validation losses, underfitting near a constant predictor."""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F
from _dyn_helpers import blobs, mlp, train

from nndoctor.monitor import Observer
from nndoctor.monitor.checks.fit import Fit, train_between
from nndoctor.monitor.checks.loss_curve import LossCurve
from nndoctor.monitor.checks.lr import LearningRate

CHECKS = [Fit, LossCurve, LearningRate]


def _overfit_setup(seed=0):
    # few noisy training points, a wide net, many epochs
    X, y = blobs(n=1200, spread=0.5, seed=seed)
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(16, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, 4))
    return model, X[:96], y[:96], X[200:], y[200:]


def test_validation_loss_rising_is_overfitting_module_loss():
    model, Xt, yt, Xv, yv = _overfit_setup()
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    with Observer(checks=CHECKS) as obs:
        train(model, opt, Xt, yt, 300, batch=32, functional=False, eval_every=3, X_val=Xv, y_val=yv)
    (f,) = obs.report().by_code("fit.overfitting")
    ev = f.evidence
    assert ev["last_val_loss"] > 1.1 * ev["best_val_loss"]
    assert ev["train_loss_last"] < ev["train_loss_at_best"]
    assert "data" in f.fixes[0]


def test_overfitting_with_functional_sum_reduction_eval_loop():
    model, Xt, yt, Xv, yv = _overfit_setup(seed=1)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    with Observer(checks=CHECKS) as obs:
        for _epoch in range(100):
            for i in range(0, 96, 32):
                loss = F.cross_entropy(model(Xt[i:i + 32]), yt[i:i + 32])
                opt.zero_grad()
                loss.backward()
                opt.step()
            with torch.no_grad():
                total = sum(F.cross_entropy(model(Xv[j:j + 250]), yv[j:j + 250], reduction="sum").item()
                            for j in range(0, 1000, 250))
            del total
    (f,) = obs.report().by_code("fit.overfitting")
    # sum-reduced evaluation losses are brought to the per-example scale of the training loss
    assert f.evidence["best_val_loss"] < 3.0


def test_healthy_run_with_validation_is_quiet():
    X, y = blobs(n=3000, spread=1.0)
    model = mlp()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    with Observer(checks=CHECKS) as obs:
        train(model, opt, X[:2400], y[:2400], 300, eval_every=25, X_val=X[2400:], y_val=y[2400:])
    assert len(obs.state.eval_losses) >= 10  # evaluation losses are caught on unsampled steps too
    assert not torch._C._is_torch_function_mode_enabled()
    assert not obs.report().at_least("warning"), [(f.code, f.message) for f in obs.findings]


def test_linear_model_on_nonlinear_target_underfits():
    torch.manual_seed(0)
    x = torch.linspace(-3, 3, 2048).unsqueeze(1)
    y = torch.sin(3 * x)
    perm = torch.randperm(2048)
    x, y = x[perm], y[perm]
    model = nn.Linear(1, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    with Observer(checks=CHECKS) as obs:
        for i in range(300):
            j = (i * 32) % 2016
            loss = F.mse_loss(model(x[j:j + 32]), y[j:j + 32])
            opt.zero_grad()
            loss.backward()
            opt.step()
    (f,) = obs.report().by_code("fit.underfitting")
    assert f.evidence["train_loss"] >= 0.7 * f.evidence["constant_prediction_loss"]
    assert "bigger model" in f.fixes[0]
    assert not obs.report().by_code("lr.too-high")


def test_well_fitting_model_is_not_underfitting():
    X, y = blobs(n=3000, spread=1.0)
    model = mlp()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with Observer(checks=CHECKS) as obs:
        train(model, opt, X, y, 400)
    assert not obs.report().by_code("fit.underfitting")


def test_train_between_spans():
    import numpy as np

    s = np.array([1, 2, 3, 4, 5, 6])
    v = np.array([6.0, 5.0, 4.0, 3.0, 2.0, 1.0])
    assert train_between(s, v, [2, 5]) == [5.5, 3.0]
