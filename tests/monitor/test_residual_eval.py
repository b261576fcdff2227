"""Held-out regression metrics of the script's own (nndoctor/monitor/residuals.py): a validation
MAE, R-squared or RMSE written by hand, not the training loss, still gives a validation curve (the
training loss on the held-out residuals), so over-fitting on a small regression shows; healthy
runs scored the same way stay quiet, and classification runs record nothing from subtractions."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

from nndoctor.monitor import Observer
from nndoctor.monitor.checks.fit import Fit
from nndoctor.monitor.residuals import ResidualEval


def _data(noise: float, n: int, seed: int = 0):
    torch.manual_seed(seed)
    x = torch.rand(n, 3) * 6 - 3
    y = torch.sin(x[:, :1]) + 0.3 * x[:, 1:2] + noise * torch.randn(n, 1)
    xv = torch.rand(200, 3) * 6 - 3
    return x, y, xv, torch.sin(xv[:, :1]) + 0.3 * xv[:, 1:2] + noise * torch.randn(200, 1)


def _mlp() -> nn.Module:
    return nn.Sequential(nn.Linear(3, 128), nn.ReLU(), nn.Linear(128, 128), nn.ReLU(), nn.Linear(128, 1))


def _mae_no_grad(model, xv, yv):
    model.eval()
    with torch.no_grad():
        return float((model(xv) - yv).abs().mean())


def _r2_eval_mode(model, xv, yv):
    model.eval()  # (no torch.no_grad(): gradients on, no backward after)
    p = model(xv)
    return float((1 - ((p - yv) ** 2).sum() / ((yv - yv.mean()) ** 2).sum()).detach())


def _rmse_loader(model, xv, yv):
    model.eval()
    total, rows = 0.0, 0
    with torch.no_grad():
        for xb, yb in DataLoader(TensorDataset(xv, yv), batch_size=100):
            total += float(((model(xb).squeeze(1) - yb.squeeze(1)) ** 2).sum())
            rows += len(xb)
    return (total / rows) ** 0.5


STYLES = {"mae-no-grad": (F.mse_loss, _mae_no_grad), "r2-eval-mode": (nn.MSELoss(), _r2_eval_mode),
          "rmse-loader": (F.smooth_l1_loss, _rmse_loader)}


def _run(style: str, noise: float, n: int, steps: int = 300, every: int = 20) -> Observer:
    """Adam on a few noisy rows (memorised: the held-out error climbs) or many clean ones."""
    loss_fn, score = STYLES[style]
    x, y, xv, yv = _data(noise, n)
    model = _mlp()
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    with Observer(checks=[Fit]) as obs:
        for i in range(steps):
            model.train()
            opt.zero_grad()
            loss_fn(model(x), y).backward()
            opt.step()
            if i % every == every - 1:
                score(model, xv, yv)
    return obs


def _evaluations(obs: Observer) -> int:
    return len(set(obs.state.eval_losses.series()[0]))


@pytest.mark.parametrize("style", list(STYLES))
def test_overfitting_is_seen_through_a_metric_of_the_scripts_own(style):
    obs = _run(style, noise=0.8, n=24)
    assert _evaluations(obs) == 15  # held-out values at each evaluation, none from training
    assert [f.code for f in obs.findings] == ["fit.overfitting"]


@pytest.mark.parametrize("style", list(STYLES))
def test_a_healthy_regression_scored_the_same_way_stays_quiet(style):
    obs = _run(style, noise=0.05, n=512, steps=200)
    assert _evaluations(obs) == 10
    assert not obs.findings


def test_the_value_is_the_training_loss_of_the_residual():
    r = ResidualEval()
    p, y = torch.randn(32, 1), torch.randn(32, 1)
    r.on_training_loss("mse_loss", p, y)
    assert float(r.value((p, y), p - y)) == pytest.approx(float(F.mse_loss(p, y)))
    r = ResidualEval()
    r.on_recipe(("mean", "abs", "sub"))
    assert float(r.value((p, y), p - y)) == pytest.approx(float(F.l1_loss(p, y)))


def test_no_residual_from_other_subtractions_or_other_losses():
    r = ResidualEval()
    x, y = torch.randn(32, 5), torch.randn(32, 1)
    r.on_training_loss("mse_loss", torch.randn(32, 1), y)
    assert r.value((x, x.mean(0)), x - x.mean(0)) is None      # centring: not the same shape
    assert r.value((x, x + 1), x - (x + 1)) is None              # rows not shaped like the prediction
    assert r.value((y, torch.zeros(32, 1, dtype=torch.long)), y) is None  # not two float tensors
    c = ResidualEval()
    c.on_training_loss("cross_entropy", torch.randn(32, 4), torch.randint(0, 4, (32,)))
    assert not c.active and c.value((y, y), y - y) is None       # a classification: no residual


def test_a_validation_loss_function_is_the_record_not_the_residual():
    x, y, xv, yv = _data(0.05, 256)
    model = _mlp()
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    with Observer(checks=[Fit]) as obs:
        for i in range(100):
            opt.zero_grad()
            F.mse_loss(model(x), y).backward()
            opt.step()
            if i % 20 == 19:
                with torch.no_grad():
                    p = model(xv)
                    F.l1_loss(p, yv)
                    float((p - yv).abs().mean())
    assert len(obs.state.eval_losses) == 5  # the loss function's five, no residual beside them
