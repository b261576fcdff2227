"""fit.underfitting from a linear model on data that need a non-linear one; lookalikes stay quiet."""

from __future__ import annotations

from typing import Callable

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from sklearn.datasets import make_circles, make_moons
from torch.utils.data import DataLoader, TensorDataset

from nndoctor.findings import Report
from nndoctor.monitor import Observer
from nndoctor.monitor.checks.data.linear import LinearModelUnderfits, linear_layers
from nndoctor.monitor.checks.data.sample import DataCollector

CHECKS = [DataCollector, LinearModelUnderfits]


def _circles(n: int = 1200) -> tuple[torch.Tensor, torch.Tensor]:
    x, y = make_circles(n_samples=n, noise=0.08, factor=0.4, random_state=0)
    return torch.tensor(x, dtype=torch.float32), torch.tensor(y)


def _xor(n: int = 1200) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    x = torch.randn(n, 4, generator=g)
    return x, ((x[:, 0] > 0) ^ (x[:, 1] > 0)).long()


def _moons(n: int = 1200) -> tuple[torch.Tensor, torch.Tensor]:
    x, y = make_moons(n_samples=n, noise=0.05, random_state=0)
    return torch.tensor(x, dtype=torch.float32), torch.tensor(y)


def _blobs(n: int = 1200) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(2)
    y = torch.randint(0, 3, (n,), generator=g)
    centres = torch.tensor([[3.0, 0.0], [-3.0, 0.0], [0.0, 3.0]])
    return centres[y] + torch.randn(n, 2, generator=g), y


class TwoLinear(nn.Module):
    """A hidden layer whose activation was forgotten (or, with ``act``, called functionally)."""

    def __init__(self, d: int, act: bool = False) -> None:
        super().__init__()
        self.fc1, self.fc2, self.act = nn.Linear(d, 32), nn.Linear(32, 2), act

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.fc1(x)
        return self.fc2(F.relu(h) if self.act else h)


def _loader_adam(model: nn.Module, x: torch.Tensor, y: torch.Tensor, epochs: int = 6, lr: float = 1e-2) -> None:
    loader = DataLoader(TensorDataset(x, y), batch_size=50, shuffle=True)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    crit = nn.CrossEntropyLoss()
    for _ in range(epochs):
        for xb, yb in loader:
            opt.zero_grad()
            crit(model(xb), yb).backward()
            opt.step()


def _manual_sgd(model: nn.Module, x: torch.Tensor, y: torch.Tensor, epochs: int = 6, lr: float = 0.1,
                nll: bool = False) -> None:
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    for _ in range(epochs):
        perm = torch.randperm(len(x))
        for i in range(0, len(x), 40):
            b = perm[i:i + 40]
            out = model(x[b])
            loss = F.nll_loss(out, y[b]) if nll else F.cross_entropy(out, y[b])
            opt.zero_grad()
            loss.backward()
            opt.step()


def _observe(train: Callable[[], None]) -> Report:
    torch.manual_seed(0)
    with Observer(checks=CHECKS) as obs:
        train()
    assert not obs.internal_errors, obs.internal_errors
    return obs.report()


def _logreg_on_circles() -> None:
    _loader_adam(nn.Sequential(nn.Linear(2, 2)), *_circles())


def _forgotten_activation_on_xor() -> None:
    _manual_sgd(TwoLinear(4), *_xor())


def _linear_log_softmax_on_moons() -> None:
    _manual_sgd(nn.Sequential(nn.Flatten(), nn.Linear(2, 2), nn.LogSoftmax(dim=1)), *_moons(), nll=True)


@pytest.mark.parametrize("train", [_logreg_on_circles, _forgotten_activation_on_xor, _linear_log_softmax_on_moons],
                         ids=lambda f: f.__name__[1:])
def test_a_linear_model_on_non_linear_data_underfits(train: Callable[[], None]) -> None:
    report = _observe(train)
    (f,) = report.by_code("fit.underfitting")
    assert f.severity.name == "WARNING" and f.evidence["model_is_linear"] is True
    assert f.evidence["linear_probe_accuracy"] + 0.1 <= max(f.evidence["knn_probe_accuracy"],
                                                            f.evidence["mlp_probe_accuracy"])


def _functional_relu_on_xor() -> None:
    _manual_sgd(TwoLinear(4, act=True), *_xor())


def _logreg_on_blobs() -> None:
    _loader_adam(nn.Sequential(nn.Linear(2, 3)), *_blobs())


def _stuck_mlp_on_circles() -> None:           # not linear: its own trouble (the lr), not its capacity
    _loader_adam(nn.Sequential(nn.Linear(2, 32), nn.Tanh(), nn.Linear(32, 2)), *_circles(), lr=1e-7)


def _mlp_on_circles() -> None:
    _loader_adam(nn.Sequential(nn.Linear(2, 32), nn.ReLU(), nn.Linear(32, 2)), *_circles())


@pytest.mark.parametrize("train", [_functional_relu_on_xor, _logreg_on_blobs, _stuck_mlp_on_circles, _mlp_on_circles],
                         ids=lambda f: f.__name__[1:])
def test_non_linear_models_and_linear_data_stay_quiet(train: Callable[[], None]) -> None:
    assert not _observe(train).by_code("fit.underfitting")


def test_linear_layers_counts_only_activation_free_linear_stacks() -> None:
    assert linear_layers(nn.Linear(3, 2)) == 1
    assert linear_layers(nn.Sequential(nn.Flatten(), nn.Linear(3, 4), nn.Dropout(0.1), nn.Linear(4, 2))) == 2
    assert linear_layers(TwoLinear(3)) == 2                  # a functional activation is seen at run time
    assert linear_layers(nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))) == 0
    assert linear_layers(nn.Sequential(nn.Conv1d(1, 2, 3), nn.Flatten(), nn.Linear(2, 2))) == 0
    assert linear_layers(nn.Sequential(nn.Embedding(5, 3), nn.Linear(3, 2))) == 0
