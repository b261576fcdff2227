"""Chance level of a class-weighted loss: priced as the script's weighted loss pays it.

A balanced ``weight=`` on a rare-class problem puts a learning model's weighted loss above the
unweighted prior entropy (0.72 nats here) while it is far below what a constant prediction pays under
the weights (1.07): judged against the unweighted level, healthy training looked "at chance" and got
``labels.unrelated-to-inputs``. A ``pos_weight=`` on rare positives puts a model at chance far above
twice the unweighted level: shuffled labels went unreported.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

from nndoctor.monitor import Observer
from nndoctor.monitor.checks.data.balance import ClassBalance
from nndoctor.monitor.checks.data.loss_weights import LossWeights
from nndoctor.monitor.checks.data.probe import LabelsUnrelated, chance_loss
from nndoctor.monitor.checks.data.sample import DataCollector
from nndoctor.monitor.checks.fit import Fit

CHECKS = [DataCollector, ClassBalance, LabelsUnrelated, Fit]
CODE = "labels.unrelated-to-inputs"


def _rare_class_data(seed=0, n=4000):
    """Classes of 60/38/2%: the two frequent ones barely apart (shift 0.3), the rare one clear (2.0),
    so the probes on ~850 sampled pairs (a dozen of the rare class) see little."""
    g = torch.Generator().manual_seed(seed)
    y = torch.multinomial(torch.tensor([0.6, 0.38, 0.02]), n, replacement=True, generator=g)
    x = torch.randn(n, 10, generator=g)
    x[:, 0] += 0.3 * y
    x[:, 1] -= 2.0 * (y == 2)
    return x, y


def _balanced(y, classes):
    counts = torch.bincount(y, minlength=classes).float()
    return counts.sum() / (classes * counts)


def _weighted_loss(style, weight):
    if style == "module":
        return nn.CrossEntropyLoss(weight=weight)
    if style == "functional":
        return lambda out, t: F.cross_entropy(out, t, weight=weight)
    return lambda out, t: F.nll_loss(F.log_softmax(out, 1), t, weight=weight)


def _fit(x, y, loss_fn, out=3, epochs=6):
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(x.shape[1], 32), nn.ReLU(), nn.Linear(32, out))
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    loader = DataLoader(TensorDataset(x, y), batch_size=64, shuffle=True)
    with Observer(checks=CHECKS) as obs:
        for _ in range(epochs):
            for xb, yb in loader:
                opt.zero_grad()
                loss_fn(net(xb), yb).backward()
                opt.step()
    return obs.report().by_code(CODE)


@pytest.mark.parametrize("style", ["module", "functional", "nll"])
def test_class_weighted_rare_class_training_is_not_at_chance(style):
    x, y = _rare_class_data()
    assert _fit(x, y, _weighted_loss(style, _balanced(y, 3))) == []


def test_class_weighted_training_on_shuffled_labels_is_still_unrelated():
    x, y = _rare_class_data()
    y = y[torch.randperm(len(y), generator=torch.Generator().manual_seed(1))]
    assert _fit(x, y, _weighted_loss("module", _balanced(y, 3)))


def _rare_positives(seed=0, n=4000):
    g = torch.Generator().manual_seed(seed)
    y = (torch.rand(n, generator=g) < 0.06).float()
    x = torch.randn(n, 10, generator=g)
    x[:, :3] += 1.5 * y[:, None]
    return x, y


@pytest.mark.parametrize("shuffled", [False, True])
def test_pos_weighted_bce_is_judged_against_its_weighted_chance_level(shuffled):
    # at chance, the pos_weight loss (~1.4) is seven times the unweighted entropy (0.23): the shuffled
    # labels went unreported; the learning model stays quiet
    x, y = _rare_positives()
    if shuffled:
        y = y[torch.randperm(len(y), generator=torch.Generator().manual_seed(1))]
    pw = (len(y) - y.sum()) / y.sum()
    crit = nn.BCEWithLogitsLoss(pos_weight=pw)
    found = _fit(x, y, lambda out, t: crit(out.squeeze(1), t), out=1)
    assert bool(found) == shuffled, found


def _best_constant_loss(counts, weight=None, pos_weight=None):
    """What the best constant prediction pays, found by LBFGS on the loss itself."""
    binary = pos_weight is not None
    t = torch.cat([torch.full((int(c),), float(i) if binary else i) for i, c in enumerate(counts)])
    z = torch.zeros(1 if binary else len(counts), requires_grad=True)
    w = None if weight is None else torch.tensor(weight, dtype=torch.float32)

    def loss():
        if binary:
            return F.binary_cross_entropy_with_logits(z.expand_as(t), t, pos_weight=torch.tensor(pos_weight))
        return F.cross_entropy(z.expand(len(t), -1), t, weight=w)

    opt = torch.optim.LBFGS([z], max_iter=200, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        value = loss()
        value.backward()
        return value
    opt.step(closure)
    return float(loss().detach())


@pytest.mark.parametrize("counts,weight", [([560, 324, 12], [0.6, 1.0, 28.0]), ([50, 30, 20, 0], [1.0, 2.0, 0.5, 3.0]),
                                           ([900, 100], None)])
def test_weighted_chance_loss_is_the_best_constant_predictions_loss(counts, weight):
    got = chance_loss("cross_entropy", np.array(counts, dtype=float), None if weight is None else np.array(weight))
    assert got == pytest.approx(_best_constant_loss(counts, weight), rel=1e-3)


@pytest.mark.parametrize("counts,pw", [([940, 60], 15.7), ([500, 500], 0.3)])
def test_pos_weighted_chance_loss_is_the_best_constant_predictions_loss(counts, pw):
    got = chance_loss("binary_cross_entropy_with_logits", np.array(counts, dtype=float), pos_weight=pw)
    assert got == pytest.approx(_best_constant_loss(counts, pos_weight=pw), rel=1e-3)


def test_weights_that_change_or_are_per_example_leave_chance_unknown():
    w = LossWeights()
    w.note("cross_entropy", {"weight": torch.tensor([1.0, 2.0])})
    w.note("cross_entropy", {"weight": torch.tensor([1.0, 2.0])})
    assert w.known and w.class_weight.tolist() == [1.0, 2.0]
    w.note("cross_entropy", {"weight": torch.tensor([1.0, 3.0])})
    assert not w.known
    per_example = LossWeights()
    per_example.note("binary_cross_entropy_with_logits", {"weight": torch.rand(8)})
    assert not per_example.known
