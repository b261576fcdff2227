"""An evaluation can only be flattered by examples the model was trained on BEFORE it: a no-gradient pass
over rows that training uses only afterwards (features for a closed-form fit of a new head before fine-tuning
on the same rows, an accuracy before training, an earlier fold) is not train-test leakage. A test split that
overlaps rows trained on before its evaluation still is."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

from nndoctor.monitor import Observer
from nndoctor.monitor.checks.data.leakage import TrainEvalLeakage
from nndoctor.monitor.checks.data.sample import DataCollector

CODE = "data.train-test-leakage"


def _data(n=1600, seed=0):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, 20, generator=g)
    y = (X[:, :3].sum(1) > 0).long() + (X[:, 3] > 0).long()
    return X, y


def _run(style: str, test: slice, before: bool = True):
    """Pre-train on rows 0-800; a no-gradient pass over rows 800-1400 (the fine-tuning rows) before
    (``before``) or after fine-tuning on them; then an evaluation on ``test``."""
    X, y = _data()
    torch.manual_seed(0)
    body = nn.Sequential(nn.Linear(20, 32), nn.ReLU())
    head = nn.Linear(32, 3)
    opt = torch.optim.Adam([*body.parameters(), *head.parameters()], lr=2e-3)
    ft = slice(800, 1400)

    def steps(rows, n):
        if style == "loader":
            it = iter(DataLoader(TensorDataset(X[rows], y[rows]), batch_size=32, shuffle=True))
            for _ in range(n):
                try:
                    xb, yb = next(it)
                except StopIteration:
                    it = iter(DataLoader(TensorDataset(X[rows], y[rows]), batch_size=32, shuffle=True))
                    xb, yb = next(it)
                yield xb, yb
        else:
            idx = torch.arange(rows.start, rows.stop)
            for _ in range(n):
                i = idx[torch.randint(0, len(idx), (32,))]
                yield X[i], y[i]

    def feature_pass():
        with torch.no_grad():
            feats = body(X[ft])
            sol = torch.linalg.lstsq(torch.cat([feats, torch.ones(len(feats), 1)], 1),
                                     F.one_hot(y[ft], 3).float()).solution
            if style != "plain":
                head.weight.copy_(sol[:-1].T)
                head.bias.copy_(sol[-1])

    with Observer(checks=[DataCollector, TrainEvalLeakage]) as obs:
        for xb, yb in steps(slice(0, 800), 150):
            loss = F.cross_entropy(head(body(xb)), yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
        if before:
            feature_pass()
        for xb, yb in steps(ft, 200):
            loss = F.cross_entropy(head(body(xb)), yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
        if not before:
            feature_pass()
        with torch.no_grad():
            (head(body(X[test])).argmax(1) == y[test]).float().mean()
    return [f for f in obs.report().by_code(CODE) if f.severity.value != "info"]


@pytest.mark.parametrize("style", ["plain", "head_init", "loader"])
def test_a_pass_over_rows_trained_on_only_later_is_not_leakage(style):
    found = _run(style, slice(1400, 1600))
    assert not found, [f.message for f in found]


@pytest.mark.parametrize("style", ["plain", "head_init"])
def test_a_test_split_overlapping_rows_trained_on_before_it_is_still_leakage(style):
    # (with DataLoaders a third of the test split matching reads as a pass over training data, old and new)
    assert _run(style, slice(1200, 1600)), "rows 1200-1400 were fine-tuned on before the evaluation"


def test_the_same_pass_after_training_on_its_rows_is_judged():
    """The feature pass run after fine-tuning reads rows the model was trained on: it is a look at
    training data (reported or not by the evaluated-on-training-data check), never excused by order."""
    from nndoctor.monitor.checks.data.leakage import _overlap
    from nndoctor.monitor.checks.data.sample import EvalPass, ObservedData
    data = ObservedData()
    data.train_hashes.update([1, 2, 3, 4])
    data.train_first_step.update({1: 5, 2: 5, 3: 50, 4: 50})
    # some shared examples seen before the pass: the rest may have been trained on unsampled: all count
    assert _overlap(data, EvalPass(step=10, hashes=[1, 2, 3, 4, 9])) == (4, 5)
    assert _overlap(data, EvalPass(step=60, hashes=[1, 2, 3, 4, 9])) == (4, 5)
    # every shared example first trained on after the pass: none counts
    assert _overlap(data, EvalPass(step=4, hashes=[1, 2, 3, 4, 9])) == (0, 5)
