"""dtype.continuous-values-truncated: float values with fractional parts converted to integers and
then trained on as numbers (targets or inputs); deliberate binning, float-stored labels and counts
stay quiet."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

from nndoctor.debug.truncation import ContinuousValuesTruncated, truncation_loss
from nndoctor.monitor import Observer
from nndoctor.monitor.checks.data.sample import DataCollector

CODE = "dtype.continuous-values-truncated"
CHECKS = [ContinuousValuesTruncated, DataCollector]


def _xy(n: int = 400, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, size=(n, 4)).astype(np.float32)
    y = 2.0 + 1.5 * np.sin(2 * x[:, 0]) + 0.4 * x[:, 1]
    return x, y


class Reg(nn.Module):
    def __init__(self, d: int = 4, out: int = 1) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Linear(d, 32), nn.Tanh(), nn.Linear(32, out))

    def forward(self, x):
        return self.body(x).squeeze(-1)


def _hits(obs: Observer):
    assert not obs.internal_errors, obs.internal_errors
    return [f for f in obs.findings if f.code == CODE]


def _loader_run(make_targets, loss=F.mse_loss, epochs: int = 1):
    torch.manual_seed(0)
    x, y = _xy()
    with Observer(checks=CHECKS) as obs:
        xt = torch.from_numpy(x)
        yt = make_targets(y)
        model = Reg()
        opt = torch.optim.Adam(model.parameters(), lr=3e-3)
        for _ in range(epochs):
            for xb, yb in DataLoader(TensorDataset(xt, yt), batch_size=50, shuffle=True):
                opt.zero_grad()
                loss(model(xb), yb.float()).backward()
                opt.step()
    return _hits(obs)


@pytest.mark.parametrize("make", [
    lambda y: torch.tensor(y, dtype=torch.long),
    lambda y: torch.from_numpy(y).long(),
    lambda y: torch.as_tensor(y, dtype=torch.int32),
    lambda y: torch.tensor(y).to(torch.int64),
])
def test_truncated_regression_targets_are_caught(make):
    hits = _loader_run(make)
    assert hits and hits[0].evidence["used_as"] == "target", hits
    assert "test_truncation.py" in hits[0].location


def test_truncated_targets_caught_with_module_loss_and_slicing():
    torch.manual_seed(0)
    x, y = _xy()
    with Observer(checks=CHECKS) as obs:
        X = torch.tensor(x)
        Y = torch.tensor(y[:, None]).int()  # (N, 1) targets
        model = nn.Sequential(nn.Linear(4, 32), nn.ReLU(), nn.Linear(32, 1))
        opt = torch.optim.SGD(model.parameters(), lr=0.01)
        crit = nn.L1Loss()
        for i in range(0, 400, 40):
            opt.zero_grad()
            crit(model(X[i:i + 40]), Y[i:i + 40].float()).backward()
            opt.step()
    assert _hits(obs)


def test_truncated_inputs_are_caught():
    torch.manual_seed(0)
    x, y = _xy()
    with Observer(checks=CHECKS) as obs:
        X = torch.tensor(x * 3).long().float()  # features truncated, back to float for the model
        Y = torch.tensor(y, dtype=torch.float32)
        model = Reg()
        opt = torch.optim.Adam(model.parameters(), lr=3e-3)
        for i in range(0, 400, 50):
            opt.zero_grad()
            F.mse_loss(model(X[i:i + 50]), Y[i:i + 50]).backward()
            opt.step()
    hits = _hits(obs)
    assert hits and hits[0].evidence["used_as"] == "input", hits


def test_healthy_lookalikes_stay_quiet():
    # float targets
    assert not _loader_run(lambda y: torch.tensor(y, dtype=torch.float32))
    # whole-number targets that were never truncated (counts stored as floats, then long)
    assert not _loader_run(lambda y: torch.tensor(np.floor(y * 3), dtype=torch.long))
    # binning on purpose into a classification loss
    def ce(out, yb):
        return F.cross_entropy(torch.stack([out, -out], 1), (yb > 2).long())
    assert not _loader_run(lambda y: (torch.tensor(y) * 10).long(), loss=ce)


def test_binned_classes_and_float_labels_stay_quiet():
    torch.manual_seed(0)
    x, y = _xy()
    with Observer(checks=CHECKS) as obs:
        X = torch.tensor(x)
        classes = (torch.tensor(y) * 2).long()  # 0..9 class ids on purpose
        labels01 = torch.tensor((y > 2).astype(np.float64)).float()  # 0.0/1.0 labels
        model = Reg(out=10)
        opt = torch.optim.Adam(model.parameters(), lr=3e-3)
        for i in range(0, 400, 50):
            out = model.body(X[i:i + 50])
            loss = F.cross_entropy(out, classes[i:i + 50]) + F.mse_loss(out[:, 0], labels01[i:i + 50])
            opt.zero_grad()
            loss.backward()
            opt.step()
    assert not _hits(obs)


def test_truncation_loss():
    frac, lost, _ = truncation_loss(np.linspace(0.5, 3.5, 100))
    assert frac > 0.9 and lost > 0.05
    assert truncation_loss(np.arange(100.0))[0] == 0
    assert truncation_loss(np.linspace(0, 255, 1000))[1] < 0.02  # pixels: a fine staircase
