"""lr.plateau-scheduler-wrong-mode: ReduceLROnPlateau(mode='max') stepped with a validation loss, or
mode='min' with an accuracy (as a fraction or in percent), cuts the rate while training improves;
the right modes, a plateau that really cuts the rate, and a scheduler given the training loss stay
quiet."""

from __future__ import annotations

from typing import Callable

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.optim.lr_scheduler import ReduceLROnPlateau
from torch.utils.data import DataLoader, TensorDataset

from nndoctor.monitor import Observer
from nndoctor.monitor.checks.best_restore import RestoredNotBest
from nndoctor.monitor.checks.plateau_mode import PlateauSchedulerWrongMode

CODE = "lr.plateau-scheduler-wrong-mode"
_G = torch.Generator().manual_seed(0)
X = torch.randn(1200, 20, generator=_G)
W = torch.randn(20, 4, generator=_G)
Y = (X @ W + 0.5 * torch.randn(1200, 4, generator=_G)).argmax(1)
R = (X @ W[:, :1]) + 0.3 * torch.randn(1200, 1, generator=_G)


def _observe(run: Callable[[], None]) -> list:
    torch.manual_seed(0)
    with Observer(checks=[PlateauSchedulerWrongMode, RestoredNotBest]) as obs:
        run()
    assert not obs.internal_errors, obs.internal_errors
    return [f for f in obs.findings if f.code == CODE]


def _classify(mode: str, metric: str, epochs: int = 12, lr: float = 0.05) -> Callable[[], None]:
    def run() -> None:
        model = nn.Sequential(nn.Linear(20, 64), nn.ReLU(), nn.Linear(64, 4))
        opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
        sched = ReduceLROnPlateau(opt, mode=mode, factor=0.5, patience=1)
        val = DataLoader(TensorDataset(X[800:], Y[800:]), batch_size=100)
        for _ in range(epochs):
            model.train()
            train_loss = 0.0
            for i in range(0, 800, 32):
                loss = F.cross_entropy(model(X[i:i + 32]), Y[i:i + 32])
                opt.zero_grad()
                loss.backward()
                opt.step()
                train_loss += loss.item()
            model.eval()
            total = correct = 0.0
            with torch.no_grad():
                for xb, yb in val:
                    out = model(xb)
                    total += F.cross_entropy(out, yb).item()
                    correct += (out.argmax(1) == yb).sum().item()
            sched.step({"loss": total / len(val), "accuracy": correct / 400, "percent": 100 * correct / 400,
                        "train_loss": train_loss}[metric])
    return run


def _regress_tensor_metric() -> None:
    model = nn.Sequential(nn.Linear(20, 32), nn.Tanh(), nn.Linear(32, 1))
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    sched = ReduceLROnPlateau(opt, "max", patience=0, factor=0.3)
    crit = nn.MSELoss()
    for _ in range(10):
        for i in range(0, 800, 50):
            opt.zero_grad()
            crit(model(X[i:i + 50]), R[i:i + 50]).backward()
            opt.step()
        with torch.no_grad():
            val_loss = crit(model(X[800:]), R[800:])
        sched.step(val_loss)  # a 0-dim tensor


@pytest.mark.parametrize("run", [_classify("max", "loss"), _classify("min", "accuracy"),
                                 _classify("min", "percent"), _regress_tensor_metric],
                         ids=["max-loss", "min-accuracy", "min-percent", "max-tensor-mse"])
def test_mode_opposite_to_the_metric_is_a_warning(run) -> None:
    found = _observe(run)
    assert len(found) == 1, found
    ev = found[0].evidence
    assert ev["right_mode"] != ev["mode"] and ev["cuts"] >= 2
    assert "ReduceLROnPlateau" in found[0].message


@pytest.mark.parametrize("mode,metric", [("min", "loss"), ("max", "accuracy"), ("max", "percent"),
                                         ("min", "train_loss")])
def test_the_right_mode_is_quiet(mode: str, metric: str) -> None:
    assert _observe(_classify(mode, metric)) == []


def test_a_real_plateau_that_cuts_the_rate_is_quiet() -> None:
    """A rate too high to improve after the first epochs: the right mode cuts it repeatedly."""
    assert _observe(_classify("min", "loss", epochs=14, lr=2.0)) == []
