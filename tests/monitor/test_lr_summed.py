"""lr.too-high names a summed training loss: its gradient is N x a mean's, so an SGD rate tuned for
a mean acts N x larger (three ways to sum; Adam's scale-free steps are not blamed on the sum)."""

from __future__ import annotations

from typing import Callable

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from _dyn_helpers import blobs

from nndoctor.monitor import Observer
from nndoctor.monitor.checks.fit import Fit
from nndoctor.monitor.checks.loss_curve import LossCurve
from nndoctor.monitor.checks.lr import LearningRate, summed_terms

CHECKS = [Fit, LossCurve, LearningRate]

LOSSES: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "ce-module-sum": lambda out, y: nn.CrossEntropyLoss(reduction="sum")(out, y),
    "mse-functional-sum": lambda out, y: F.mse_loss(out, F.one_hot(y, 4).float(), reduction="sum"),
    "hand-written-sum": lambda out, y: ((out.softmax(1) - F.one_hot(y, 4).float()) ** 2).sum(),
}


def _run(loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], make_opt, batch: int = 128):
    X, y = blobs()
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(16, 64), nn.ReLU(), nn.Linear(64, 4))
    opt = make_opt(model.parameters())
    with Observer(checks=CHECKS) as obs:
        for i in range(200):
            j = (i * batch) % (len(X) - batch)
            loss = loss_fn(model(X[j:j + batch]), y[j:j + batch])
            opt.zero_grad()
            loss.backward()
            opt.step()
    return obs


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_a_too_high_rate_on_a_summed_loss_names_the_sum(name):
    obs = _run(LOSSES[name], lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9))
    found = obs.report().by_code("lr.too-high")
    assert found, [(f.code, f.message) for f in obs.findings]
    expected = 128 if name == "ce-module-sum" else 128 * 4
    assert found[0].evidence["loss_summed_over"] == expected
    assert f"a sum of {expected} terms" in found[0].message


def test_a_mean_loss_or_an_adaptive_optimizer_is_not_blamed_on_a_sum():
    obs = _run(lambda out, y: F.cross_entropy(out, y), lambda p: torch.optim.SGD(p, lr=20.0))
    (f,) = obs.report().by_code("lr.too-high")
    assert "loss_summed_over" not in f.evidence and "a sum of" not in f.message
    obs = _run(LOSSES["ce-module-sum"], lambda p: torch.optim.Adam(p, lr=1.0))
    for f in obs.report().by_code("lr.too-high"):
        assert "loss_summed_over" not in f.evidence


def test_summed_terms_reads_the_loss_root():
    x = torch.randn(32, 3, requires_grad=True)
    assert summed_terms((x ** 2).sum()) == 96
    assert summed_terms(F.mse_loss(x, torch.zeros(32, 3), reduction="sum")) == 96
    assert summed_terms(F.cross_entropy(x, torch.zeros(32, dtype=torch.long), reduction="sum")) == 32
    assert summed_terms(F.cross_entropy(x, torch.zeros(32, dtype=torch.long))) == 0
    assert summed_terms((x ** 2).mean()) == 0 and summed_terms(torch.tensor(1.0)) == 0
