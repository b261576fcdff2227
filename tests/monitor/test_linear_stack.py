"""fit.underfitting (model_is_linear) for a stack of nn.Linear layers whose hidden activation is missing or
the identity, on data a non-linear model fits clearly (not dramatically) better: hidden layers say a
non-linear model was meant, so a smaller gain of the non-linear probes names it. A single nn.Linear (a
deliberate linear model) on the same data, the stack on linearly separable data and the same stack with
a ReLU stay quiet."""

from __future__ import annotations

from typing import Callable

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from sklearn.datasets import make_classification
from torch.utils.data import DataLoader, TensorDataset

from nndoctor.findings import Report
from nndoctor.monitor import Observer
from nndoctor.monitor.checks.data.linear import LinearModelUnderfits
from nndoctor.monitor.checks.data.sample import DataCollector

CHECKS = [DataCollector, LinearModelUnderfits]


def _clusters(seed: int = 0, k: int = 2, d: int = 4) -> tuple[torch.Tensor, torch.Tensor]:
    """A linear rule with one region flipped (XOR with a tail of a second feature): a linear model gets
    ~87% right, a non-linear one ~95% (a clear gain, below the 10 points a lone nn.Linear needs)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(2000, d, generator=g)
    y = ((x[:, 0] > 0) ^ (x[:, 1] > 1.25)).long()
    return x, y


def _separable(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    x, y = make_classification(n_samples=1500, n_features=20, n_informative=6, n_classes=3,
                               n_clusters_per_class=1, class_sep=2.0, random_state=seed)
    return torch.tensor(x, dtype=torch.float32), torch.tensor(y)


class _Net(nn.Module):
    """Style 1: one activation module reused between the layers (here the identity)."""

    def __init__(self, act: nn.Module, k: int = 2) -> None:
        super().__init__()
        self.fc1, self.fc2, self.fc3 = nn.Linear(4, 64), nn.Linear(64, 64), nn.Linear(64, k)
        self.act = act

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc3(self.act(self.fc2(self.act(self.fc1(x)))))


def _loader_adam(model: nn.Module, x: torch.Tensor, y: torch.Tensor, epochs: int = 8) -> None:
    loader = DataLoader(TensorDataset(x, y), batch_size=64, shuffle=True)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    crit = nn.CrossEntropyLoss()
    for _ in range(epochs):
        for xb, yb in loader:
            opt.zero_grad()
            crit(model(xb), yb).backward()
            opt.step()


def _keras_fit(model: nn.Module, x: torch.Tensor, y: torch.Tensor, epochs: int = 10) -> None:
    """Style 2/3: index batches, F.cross_entropy, RMSprop (a Keras default)."""
    opt = torch.optim.RMSprop(model.parameters(), lr=1e-3)
    for _ in range(epochs):
        perm = torch.randperm(len(x))
        for i in range(0, len(x), 32):
            b = perm[i:i + 32]
            loss = F.cross_entropy(model(x[b]), y[b])
            opt.zero_grad()
            loss.backward()
            opt.step()


def _observe(train: Callable[[], None]) -> Report:
    torch.manual_seed(0)
    with Observer(checks=CHECKS) as obs:
        train()
    assert not obs.internal_errors, obs.internal_errors
    return obs.report()


def _identity_activation_module() -> None:
    _loader_adam(_Net(nn.Identity()), *_clusters())


def _dense_layers_without_activation() -> None:   # Keras Dense(64) with no activation= argument
    _keras_fit(nn.Sequential(nn.Linear(4, 64), nn.Linear(64, 64), nn.Linear(64, 2)), *_clusters(seed=3))


def _sequential_with_an_identity_module() -> None:
    model = nn.Sequential(nn.Flatten(), nn.Linear(4, 128), nn.Identity(), nn.Linear(128, 2))
    _keras_fit(model, *_clusters(seed=0))


@pytest.mark.parametrize("train", [_identity_activation_module, _dense_layers_without_activation,
                                   _sequential_with_an_identity_module], ids=lambda f: f.__name__[1:])
def test_a_linear_stack_on_moderately_non_linear_data_is_named(train: Callable[[], None]) -> None:
    (f,) = _observe(train).by_code("fit.underfitting")
    assert f.severity.name == "WARNING" and f.evidence["model_is_linear"] is True
    assert f.evidence["linear_layers"] >= 2


def _logistic_regression_on_the_same_data() -> None:  # one nn.Linear: a deliberate linear model
    _loader_adam(nn.Sequential(nn.Linear(4, 2)), *_clusters())


def _linear_stack_on_separable_data() -> None:
    _keras_fit(nn.Sequential(nn.Linear(20, 64), nn.Linear(64, 3)), *_separable())


def _relu_net_on_the_same_data() -> None:
    _loader_adam(_Net(nn.ReLU()), *_clusters())


@pytest.mark.parametrize("train", [_logistic_regression_on_the_same_data, _linear_stack_on_separable_data,
                                   _relu_net_on_the_same_data], ids=lambda f: f.__name__[1:])
def test_linear_models_meant_as_such_and_non_linear_nets_stay_quiet(train: Callable[[], None]) -> None:
    assert not _observe(train).by_code("fit.underfitting")
