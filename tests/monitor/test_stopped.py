"""fit.stopped-while-improving: info (never a warning) when training ends mid-descent; a converged run
and a noisy flat one stay quiet."""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

from nndoctor.findings import Severity
from nndoctor.monitor import Observer
from nndoctor.monitor.checks.stopped import StoppedWhileImproving

CODE = "fit.stopped-while-improving"
G = torch.Generator().manual_seed(0)
X = torch.randn(400, 10, generator=G)
Y = (X[:, :3].sum(1) > 0).float()


def _observe(fn: Callable[[], None]) -> list:
    torch.manual_seed(0)
    with Observer(checks=[StoppedWhileImproving]) as obs:
        fn()
    assert not obs.internal_errors, obs.internal_errors
    return [f for f in obs.findings if f.code == CODE]


def _train(epochs: int, return_inside: bool) -> nn.Module:
    model = nn.Sequential(nn.Linear(10, 16), nn.Tanh(), nn.Linear(16, 1))
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    loader = DataLoader(TensorDataset(X, Y), batch_size=25, shuffle=True)
    for _ in range(epochs):
        for xb, yb in loader:
            opt.zero_grad()
            F.binary_cross_entropy_with_logits(model(xb).squeeze(1), yb).backward()
            opt.step()
        if return_inside:
            return model
    return model


def test_return_inside_the_epoch_loop_is_info():
    hits = _observe(lambda: _train(30, return_inside=True))
    assert len(hits) == 1 and hits[0].severity is Severity.INFO
    assert hits[0].evidence["recent_drop_share"] >= 0.15


def test_full_batch_top_level_loop_cut_short_is_info_and_a_converged_run_is_quiet():
    def run(steps: int) -> Callable[[], None]:
        def loop():
            model = nn.Linear(10, 1)
            opt = torch.optim.SGD(model.parameters(), lr=0.1)
            for _ in range(steps):
                opt.zero_grad()
                nn.BCEWithLogitsLoss()(model(X).squeeze(1), Y).backward()
                opt.step()
        return loop

    assert [f.severity for f in _observe(run(20))] == [Severity.INFO]
    assert _observe(run(600)) == []


def test_noisy_flat_losses_are_quiet():
    def run():
        model = nn.Linear(10, 1)
        opt = torch.optim.SGD(model.parameters(), lr=1e-6)
        for i in range(40):
            xb, yb = X[i * 10 % 400:][:10], torch.rand(10, generator=G)
            opt.zero_grad()
            F.mse_loss(model(xb).squeeze(1), yb).backward()
            opt.step()

    assert _observe(run) == []


def test_a_run_whose_evaluation_loss_turned_up_is_not_told_to_train_longer():
    def loop():
        model = nn.Linear(10, 1)
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        for step in range(20):
            opt.zero_grad()
            nn.BCEWithLogitsLoss()(model(X).squeeze(1), Y).backward()
            opt.step()
            if step % 5 == 4:
                with torch.no_grad():  # a validation set the training makes worse (labels flipped)
                    F.binary_cross_entropy_with_logits(model(X[:100]).squeeze(1), 1 - Y[:100])

    assert _observe(loop) == []
