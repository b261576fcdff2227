"""A small noisy regression scored by a metric of the script's own (hand-written MAE, R-squared,
RMSE: no validation loss function) over-fits: fit.overfitting now sees it (monitor/residuals.py),
and the early-stopping remedy's re-run ends with the weights of the best validation step, so the
script's test error is like its fixed twin's (trained only that long)."""

from __future__ import annotations

from typing import Any, Callable

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from helpers import assert_early_stopping_trains_like_the_twin
from torch.utils.data import DataLoader, TensorDataset


def _rows(m: int, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    x = torch.rand(m, 3, generator=g) * 6 - 3
    return x, torch.sin(x[:, :1]) + 0.3 * x[:, 1:2] + 0.8 * torch.randn(m, 1, generator=g)


def _mae(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    model.eval()
    with torch.no_grad():
        return float((model(x) - y).abs().mean())


def _r2(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    model.eval()  # gradients on
    p = model(x)
    return float((1 - ((p - y) ** 2).sum() / ((y - y.mean()) ** 2).sum()).detach())


def _rmse(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    model.eval()
    total = 0.0
    with torch.no_grad():
        for xb, yb in DataLoader(TensorDataset(x, y), batch_size=100):
            total += float(((model(xb) - yb) ** 2).sum())
    return (total / len(x)) ** 0.5


def _script(score: Callable[..., float], loss_fn: Callable[..., Any]) -> Callable[[int], float]:
    def run(steps: int) -> float:
        g = torch.Generator().manual_seed(0)
        (x, y), (xv, yv), (xt, yt) = _rows(24, g), _rows(200, g), _rows(400, g)
        torch.manual_seed(0)
        model = nn.Sequential(nn.Linear(3, 128), nn.ReLU(), nn.Linear(128, 128), nn.ReLU(), nn.Linear(128, 1))
        opt = torch.optim.Adam(model.parameters(), lr=3e-3)
        for i in range(steps):
            model.train()
            opt.zero_grad()
            loss_fn(model(x), y).backward()
            opt.step()
            if i % 10 == 9:
                score(model, xv, yv)
        with torch.no_grad():  # (the test error computed outside torch: not part of the validation curve)
            return float((((model.eval()(xt)).numpy() - yt.numpy()) ** 2).mean())
    return run


STYLES = {"mae-no-grad": _script(_mae, F.mse_loss), "r2-eval-mode": _script(_r2, nn.MSELoss()),
          "rmse-loader": _script(_rmse, F.smooth_l1_loss)}


@pytest.mark.parametrize("style", list(STYLES))
def test_stopping_at_the_best_step_of_a_residual_metric_trains_like_the_twin(style: str) -> None:
    script = STYLES[style]
    assert_early_stopping_trains_like_the_twin(script)
