"""labels.eval-labels-unrelated: evaluation labels shuffled apart from the evaluation inputs; an overfit
model, a model that memorised random training labels and a correctly aligned split stay quiet."""

from __future__ import annotations

from typing import Callable

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from _dyn_helpers import fit_with_test_loader

from nndoctor.findings import Severity
from nndoctor.monitor import Observer
from nndoctor.monitor.checks.data.eval_unrelated import EvalLabelsUnrelated, independence_p
from nndoctor.monitor.checks.data.sample import DataCollector

CODE = "labels.eval-labels-unrelated"


def _blobs(n: int, k: int = 4, seed: int = 0, spread: float = 3.0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    centers = torch.randn(k, 8, generator=g) * spread
    y = torch.randint(0, k, (n,), generator=g)
    return centers[y] + torch.randn(n, 8, generator=g), y


def _observe(fn: Callable[[], None]) -> list:
    torch.manual_seed(0)
    with Observer(checks=[DataCollector, EvalLabelsUnrelated]) as obs:
        fn()
    assert not obs.internal_errors, obs.internal_errors
    return [f for f in obs.findings if f.code == CODE and f.severity is not Severity.INFO]


def _loaders(xtr, ytr, xte, yte, k: int = 4, epochs: int = 3) -> None:
    fit_with_test_loader(xtr, ytr, xte, yte, k, epochs)


class Net(nn.Module):
    def __init__(self, k: int) -> None:
        super().__init__()
        self.hidden, self.out = nn.Linear(8, 64), nn.Linear(64, k)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(torch.tanh(self.hidden(x)))


def _sliced_accuracy(xtr, ytr, xte, yte, k: int = 4, epochs: int = 6) -> None:
    """Functional loss, SGD, batches sliced by hand, accuracy by argmax == y."""
    model = Net(k)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    for _ in range(epochs):
        for i in range(0, len(xtr), 50):
            opt.zero_grad()
            F.cross_entropy(model(xtr[i:i + 50]), ytr[i:i + 50]).backward()
            opt.step()
        with torch.no_grad():
            (model(xte).argmax(1) == yte).float().mean()


@pytest.mark.parametrize("style", [_loaders, _sliced_accuracy])
def test_evaluation_labels_shuffled_apart(style):
    xtr, ytr = _blobs(400)
    xte, yte = _blobs(300, seed=1)
    xte, yte = xte, yte[torch.randperm(300, generator=torch.Generator().manual_seed(5))]  # bug
    found = _observe(lambda: style(xtr, ytr, xte, yte))
    assert len(found) == 1 and found[0].evidence["independence_p"] >= 0.01


@pytest.mark.parametrize("style", [_loaders, _sliced_accuracy])
def test_aligned_evaluation_labels_are_quiet(style):
    xtr, ytr = _blobs(400)
    xte, yte = _blobs(300, seed=1)
    perm = torch.randperm(300)
    assert _observe(lambda: style(xtr, ytr, xte[perm], yte[perm])) == []


def test_overfit_model_on_hard_data_is_quiet():
    xtr, ytr = _blobs(400, spread=0.6)  # overlapping classes: above chance on test, far from training fit
    xte, yte = _blobs(300, seed=1, spread=0.6)
    assert _observe(lambda: _sliced_accuracy(xtr, ytr, xte, yte, epochs=30)) == []


def test_memorised_random_training_labels_are_quiet():
    g = torch.Generator().manual_seed(3)
    xtr, ytr = torch.randn(400, 8, generator=g), torch.randint(0, 4, (400,), generator=g)
    xte, yte = torch.randn(300, 8, generator=g), torch.randint(0, 4, (300,), generator=g)
    assert _observe(lambda: _sliced_accuracy(xtr, ytr, xte, yte, epochs=60)) == []


def test_independence_p():
    assert independence_p(np.diag([50, 50, 50])) < 1e-6
    assert independence_p(np.full((3, 3), 20)) > 0.9
