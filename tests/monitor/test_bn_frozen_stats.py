"""train-mode.batchnorm-stats-frozen: batch norms whose running statistics never move (momentum 0),
evaluated in eval mode, caught in several styles; default, cumulative and stat-free batch norms, and a
model evaluated before training, stay quiet."""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from nndoctor.findings import Severity
from nndoctor.monitor import Observer
from nndoctor.monitor.checks.bn_frozen_stats import FrozenBatchNormStats

CODE = "train-mode.batchnorm-stats-frozen"
_G = torch.Generator().manual_seed(0)
X = 3.0 + 2.0 * torch.randn(512, 10, generator=_G)  # features far from mean 0 / variance 1
Y = (X[:, :3].sum(1) > 9).long()
IMG = 0.5 + 0.2 * torch.randn(256, 1, 8, 8, generator=_G)
IMG_Y = (IMG.mean((1, 2, 3)) > 0.5).long()


class ConvNet(nn.Module):
    def __init__(self, momentum: float | None = 0.1) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 8, 3, padding=1)
        self.bn = nn.BatchNorm2d(8, momentum=momentum)
        self.fc = nn.Linear(8 * 8 * 8, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(F.relu(self.bn(self.conv(x))).flatten(1))


def _mlp(**bn) -> nn.Module:
    return nn.Sequential(nn.Linear(10, 32), nn.BatchNorm1d(32, **bn), nn.ReLU(), nn.Linear(32, 2))


def _run(model: nn.Module, images: bool = False, epochs: int = 3, evaluate_first: bool = False) -> list:
    x, y = (IMG, IMG_Y) if images else (X, Y)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    with Observer(checks=[FrozenBatchNormStats]) as obs:
        if evaluate_first:
            model.eval()
            with torch.no_grad():
                model(x[:64])
        for _ in range(epochs):
            model.train()
            for i in range(0, len(x) - 31, 32):
                opt.zero_grad()
                F.cross_entropy(model(x[i:i + 32]), y[i:i + 32]).backward()
                opt.step()
            model.eval()
            with torch.no_grad():
                model(x[:128]).argmax(1)
    assert not obs.internal_errors, obs.internal_errors
    return [f for f in obs.findings if f.severity is not Severity.INFO]


def test_momentum_zero_is_caught_in_three_styles():
    torch.manual_seed(0)
    set_after = _mlp()
    for m in set_after.modules():
        if isinstance(m, nn.BatchNorm1d):
            m.momentum = 0.0
    for model, images in ((_mlp(momentum=0.0), False), (ConvNet(momentum=0), True), (set_after, False)):
        found = _run(model, images)
        assert [f.code for f in found] == [CODE], found
        f = found[0]
        assert f.severity is Severity.WARNING and f.evidence["momentum"] == 0
        assert f.evidence["batches_tracked"] >= 10
        assert f.location in ("model.1", "model.bn")


def test_moving_statistics_and_early_evaluation_are_quiet():
    torch.manual_seed(0)
    for model, images in ((_mlp(), False), (_mlp(momentum=None), False), (_mlp(track_running_stats=False), False),
                          (ConvNet(), True), (_mlp(momentum=0.99), False)):
        assert _run(model, images) == [], model
    # evaluated before any training batch: nothing tracked yet
    assert _run(_mlp(), evaluate_first=True, epochs=1) == []
