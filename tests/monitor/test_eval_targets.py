"""preprocessing.eval-targets-differ: evaluation regression targets scaled differently from training."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from nndoctor.findings import Severity
from nndoctor.monitor import Observer
from nndoctor.monitor.checks.data.eval_targets import EvalTargetScale

CODE = "preprocessing.eval-targets-differ"


def _data(n: int = 600, seed: int = 0, outputs: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 5, generator=g)
    y = 150 + 70 * torch.tanh(x @ torch.randn(5, outputs, generator=g))  # raw targets, like prices
    return x, y


class Net(nn.Module):
    def __init__(self, outputs: int) -> None:
        super().__init__()
        self.a, self.b = nn.Linear(5, 16), nn.Linear(16, outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.b(F.relu(self.a(x)))


def _run(*, scale_val: bool, map_back: bool = False, functional: bool = False, outputs: int = 1) -> list:
    x, y = _data(outputs=outputs)
    mu, sd = y[:450].mean(0), y[:450].std(0)
    ytr = (y[:450] - mu) / sd
    yva = (y[450:] - mu) / sd if scale_val else y[450:]
    torch.manual_seed(0)
    model = Net(outputs) if functional else nn.Sequential(nn.Linear(5, 16), nn.ReLU(), nn.Linear(16, outputs))
    opt = torch.optim.SGD(model.parameters(), lr=0.01) if functional else torch.optim.Adam(model.parameters(), 3e-3)
    crit = nn.MSELoss()
    with Observer(checks=[EvalTargetScale]) as obs:
        for _ in range(3):
            for i in range(0, 450, 50):
                pred = model(x[i:i + 50])
                loss = F.l1_loss(pred, ytr[i:i + 50]) if functional else crit(pred, ytr[i:i + 50])
                opt.zero_grad()
                loss.backward()
                opt.step()
            with torch.no_grad():
                for i in range(450, 600, 50):
                    pred = model(x[i:i + 50])
                    if map_back:
                        pred = pred * sd + mu
                    (F.l1_loss(pred, yva[i - 450:i - 400]) if functional else crit(pred, yva[i - 450:i - 400]))
    assert not obs.internal_errors, obs.internal_errors
    return [f for f in obs.findings if f.code == CODE and f.severity is not Severity.INFO]


def test_validation_targets_left_raw_module_loss_sequential():
    found = _run(scale_val=False)
    assert len(found) == 1 and found[0].evidence["mean_shift_in_train_stds"] > 10


def test_validation_targets_left_raw_functional_subclass_two_outputs():
    assert len(_run(scale_val=False, functional=True, outputs=2)) == 1


@pytest.mark.parametrize("kw", [dict(scale_val=True), dict(scale_val=True, functional=True, outputs=2),
                                dict(scale_val=False, map_back=True)])
def test_same_scaling_or_predictions_mapped_back_are_quiet(kw: dict):
    # map_back: raw validation targets compared with de-standardised predictions (healthy)
    assert _run(**kw) == []
