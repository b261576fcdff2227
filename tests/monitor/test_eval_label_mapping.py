"""labels.encoded-differently-in-eval: evaluation labels encoded by another class-to-index mapping;
a model merely bad on validation, overfitting, a constant prediction under imbalance stay quiet."""

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
from nndoctor.monitor.checks.data.mapping import EvalLabelMapping, best_mapping
from nndoctor.monitor.checks.data.sample import DataCollector

CODE = "labels.encoded-differently-in-eval"


def _blobs(n: int, k: int = 3, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    centers = torch.randn(k, 6, generator=g) * 4
    y = torch.randint(0, k, (n,), generator=g)
    return centers[y] + torch.randn(n, 6, generator=g), y


def _observe(fn: Callable[[], None]) -> list:
    torch.manual_seed(0)
    with Observer(checks=[DataCollector, EvalLabelMapping]) as obs:
        fn()
    assert not obs.internal_errors, obs.internal_errors
    return [f for f in obs.findings if f.code == CODE]


def _fit_sequential(xtr: torch.Tensor, ytr: torch.Tensor, xte: torch.Tensor, yte: torch.Tensor,
                    k: int = 3, epochs: int = 4) -> None:
    fit_with_test_loader(xtr, ytr, xte, yte, k, epochs)


class Net(nn.Module):
    def __init__(self, k: int) -> None:
        super().__init__()
        self.hidden = nn.Linear(6, 32)
        self.out = nn.Linear(32, k)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(torch.tanh(self.hidden(x)))


def _fit_subclass_accuracy(xtr: torch.Tensor, ytr: torch.Tensor, xte: torch.Tensor, yte: torch.Tensor,
                           k: int = 3) -> None:
    """Functional loss, full-batch SGD in main(), accuracy by argmax == y at the end."""
    model = Net(k)
    opt = torch.optim.SGD(model.parameters(), lr=0.2, momentum=0.9)
    for _ in range(60):
        opt.zero_grad()
        F.cross_entropy(model(xtr), ytr).backward()
        opt.step()
    with torch.no_grad():
        acc = (model(xte).argmax(dim=1) == yte).float().mean()
    del acc


def _encode(names: np.ndarray) -> torch.Tensor:
    mapping = {n: i for i, n in enumerate(sorted(set(names.tolist())))}
    return torch.tensor([mapping[n] for n in names.tolist()])


def test_mapping_built_per_split_in_the_evaluation_loader():
    x, y = _blobs(600)
    names = np.array(["cat", "dog", "owl"])[y.numpy()]
    xtr, ytr = x[:400], _encode(names[:400])
    keep = np.flatnonzero(names[400:] != "cat") + 400  # the test file holds two of the three classes
    xte, yte = x[keep], _encode(names[keep])            # ids shift: dog 1 -> 0, owl 2 -> 1
    hits = _observe(lambda: _fit_sequential(xtr, ytr, xte, yte))
    assert len(hits) == 1 and hits[0].severity is Severity.WARNING
    assert hits[0].evidence["mapping"] == {0: 1, 1: 2}
    assert hits[0].evidence["train_balanced_accuracy"] >= 0.6


def test_permuted_test_ids_with_an_accuracy_comparison_in_a_subclass():
    x, y = _blobs(500, k=4, seed=1)
    perm = torch.tensor([2, 0, 3, 1])
    hits = _observe(lambda: _fit_subclass_accuracy(x[:300], y[:300], x[300:], perm[y[300:]], k=4))
    assert len(hits) == 1 and hits[0].severity is Severity.WARNING
    assert hits[0].evidence["remapped_balanced_accuracy"] > 0.9


@pytest.mark.parametrize("case", ["healthy", "bad_on_validation", "overfitting", "imbalanced_constant"])
def test_lookalikes_are_quiet(case):
    x, y = _blobs(600, seed=2)
    xtr, ytr, xte, yte = x[:400], y[:400], x[400:], y[400:]
    if case == "bad_on_validation":  # validation labels unrelated to the inputs: diffuse confusion
        yte = torch.randint(0, 3, (200,), generator=torch.Generator().manual_seed(5))
    elif case == "overfitting":  # few noisy training rows, test from the same mapping
        xtr, ytr = xtr[:40], torch.where(torch.arange(40) % 3 == 0, (ytr[:40] + 1) % 3, ytr[:40])
    elif case == "imbalanced_constant":  # 95% one class, a model that predicts it always
        ytr = torch.zeros(400, dtype=torch.long)
        ytr[:8] = 1
        yte = torch.ones(200, dtype=torch.long)
        yte[:10] = 0
    assert _observe(lambda: _fit_sequential(xtr, ytr, xte, yte, epochs=6)) == []


def test_best_mapping():
    c = np.array([[0, 40, 0], [0, 2, 50], [0, 0, 0]])
    mapping, mapped, identity = best_mapping(c)
    assert mapping == {0: 1, 1: 2} and mapped > 0.9 and identity < 0.1
    const = np.array([[90, 0], [10, 0]])  # a constant prediction maps one class only
    assert best_mapping(const)[1] == pytest.approx(0.5)


def test_a_pass_before_training_is_not_judged():
    """An untrained model may split well-separated classes the wrong way round: only the latest
    evaluation pass (after training) counts."""
    x, y = _blobs(600, k=2, seed=3)
    xtr, ytr, xte, yte = x[:400], y[:400], x[400:], y[400:]

    def run():
        model = nn.Sequential(nn.Linear(6, 2))
        with torch.no_grad():
            model[0].weight.copy_(torch.stack([x[y == 1].mean(0) - x[y == 0].mean(0),
                                               x[y == 0].mean(0) - x[y == 1].mean(0)]))  # inverted at start
            model[0].bias.zero_()
            F.cross_entropy(model(xte), yte)
        opt = torch.optim.Adam(model.parameters(), lr=0.05)
        for _ in range(80):
            opt.zero_grad()
            F.cross_entropy(model(xtr), ytr).backward()
            opt.step()
        with torch.no_grad():
            F.cross_entropy(model(xte), yte)

    assert _observe(run) == []
