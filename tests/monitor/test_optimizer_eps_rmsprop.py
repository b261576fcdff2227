"""optimizer.adam-eps for RMSprop and Adagrad: an eps that dominates the gradients makes the step plain
SGD at lr/eps. Named (three styles) when that SGD rate is slow (lr/eps <= 1e-2); recipes that pair a large
eps with a large rate (Inception's RMSprop eps=1.0 at lr 0.045, DQN's eps=0.01 at 2.5e-4) stay quiet."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from nndoctor.monitor import Observer
from nndoctor.monitor.checks.optimizer import OptimizerSettings


def _mlp_run(make):
    """Style 1: a Sequential classifier, a loss module."""
    torch.manual_seed(0)
    x = torch.randn(256, 20)
    y = (x[:, 0] + x[:, 1] > 0).long()
    model = nn.Sequential(nn.Linear(20, 64), nn.ReLU(), nn.Linear(64, 2))
    opt = make(model.parameters())
    loss_fn = nn.CrossEntropyLoss()
    with Observer(checks=[OptimizerSettings]) as obs:
        for i in range(6):
            opt.zero_grad()
            loss_fn(model(x[i * 32:(i + 1) * 32]), y[i * 32:(i + 1) * 32]).backward()
            opt.step()
    return [f for f in obs.findings if f.code == "optimizer.adam-eps"]


class _GRU(nn.Module):
    def __init__(self):
        super().__init__()
        self.rnn = nn.GRU(1, 32, batch_first=True)
        self.head = nn.Linear(32, 3)

    def forward(self, x):
        out, _ = self.rnn(x)
        return self.head(out[:, -1])


def _gru_run(make):
    """Style 2: a GRU module on sequences, F.cross_entropy, a DataLoader."""
    torch.manual_seed(0)
    x = torch.randn(256, 12, 1)
    y = (x.sum(dim=(1, 2)) > 0).long() + (x[:, 0, 0] > 1).long()
    model = _GRU()
    opt = make(model.parameters())
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=32)
    with Observer(checks=[OptimizerSettings]) as obs:
        for xb, yb in loader:
            loss = F.cross_entropy(model(xb), yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
    return [f for f in obs.findings if f.code == "optimizer.adam-eps"]


def _regression_run(make):
    """Style 3: a regression MLP, functional MSE, model.zero_grad()."""
    torch.manual_seed(0)
    x = torch.randn(256, 8)
    y = 0.05 * x[:, :3].sum(1, keepdim=True)  # (standardised targets of a weak signal: small gradients)
    model = nn.Sequential(nn.Linear(8, 32), nn.Tanh(), nn.Linear(32, 1))
    opt = make(model.parameters())
    with Observer(checks=[OptimizerSettings]) as obs:
        for i in range(6):
            model.zero_grad()
            F.mse_loss(model(x[i * 32:(i + 1) * 32]), y[i * 32:(i + 1) * 32]).backward()
            opt.step()
    return [f for f in obs.findings if f.code == "optimizer.adam-eps"]


@pytest.mark.parametrize("run,make", [
    (_mlp_run, lambda p: torch.optim.RMSprop(p, lr=1e-3, eps=1.0)),
    (_gru_run, lambda p: torch.optim.RMSprop(p, lr=3e-3, eps=1.0)),
    (_regression_run, lambda p: torch.optim.RMSprop(p, lr=1e-3, eps=1.0)),
    (_mlp_run, lambda p: torch.optim.Adagrad(p, lr=1e-3, eps=1.0)),
], ids=["rmsprop-mlp", "rmsprop-gru", "rmsprop-regression", "adagrad-mlp"])
def test_a_dominating_eps_with_a_slow_sgd_rate_is_named(run, make):
    found = run(make)
    assert found, "no optimizer.adam-eps"
    assert found[0].severity.value == "warning"
    assert "plain SGD at lr/eps" in found[0].message


@pytest.mark.parametrize("run,make", [
    (_mlp_run, lambda p: torch.optim.RMSprop(p, lr=0.045, alpha=0.9, eps=1.0)),   # Inception's recipe
    (_gru_run, lambda p: torch.optim.RMSprop(p, lr=2.5e-4, alpha=0.95, eps=0.01)),  # DQN's
    (_regression_run, lambda p: torch.optim.RMSprop(p, lr=1e-3)),
    (_mlp_run, lambda p: torch.optim.Adagrad(p, lr=1e-2)),
    (_gru_run, lambda p: torch.optim.RMSprop(p, lr=1e-3, eps=1e-3)),
], ids=["inception", "dqn", "rmsprop-default", "adagrad-default", "rmsprop-eps-1e-3"])
def test_recipes_and_defaults_are_quiet(run, make):
    assert not run(make)
