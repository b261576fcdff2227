"""loss-curve.gradient-reversal: a loss with a term maximised through a gradient reversal layer."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from nndoctor.findings import Severity
from nndoctor.monitor import Observer
from nndoctor.monitor.checks.fit import Fit
from nndoctor.monitor.checks.loss_curve import LossCurve
from nndoctor.monitor.checks.lr import LearningRate
from nndoctor.monitor.checks.reversal import GradientReversal, reversal_factor

CHECKS = [Fit, LossCurve, LearningRate, GradientReversal]
CODE = "loss-curve.gradient-reversal"


class GradReverse(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, lam):
        ctx.lam = lam
        return x.view_as(x)

    @staticmethod
    def backward(ctx, g):
        return -ctx.lam * g, None


class ReverseOnce(torch.autograd.Function):
    """The other common spelling: a fixed factor, ``neg()`` in backward, ``clone()`` forward."""

    @staticmethod
    def forward(ctx, x):
        return x.clone()

    @staticmethod
    def backward(ctx, g):
        return g.neg()


class StraightThrough(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        return torch.round(x)

    @staticmethod
    def backward(ctx, g):
        return g


def _domains(n, shift, g):
    y = torch.randint(0, 2, (n,), generator=g)
    x = torch.randn(n, 10, generator=g) + (2 * y[:, None] - 1) * 0.8
    x[:, 5:] += shift
    return x, y


def _dann(reverse, steps=600):
    """Domain-adversarial training: features, a label classifier and a domain discriminator."""
    g = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    xs, ys = _domains(1000, 0.0, g)
    xt, _ = _domains(1000, 2.0, g)
    feat = nn.Sequential(nn.Linear(10, 64), nn.ReLU(), nn.Linear(64, 32), nn.ReLU())
    clf, dom = nn.Linear(32, 2), nn.Sequential(nn.Linear(32, 32), nn.ReLU(), nn.Linear(32, 2))
    opt = torch.optim.Adam([*feat.parameters(), *clf.parameters(), *dom.parameters()], 1e-3)
    domain = torch.cat([torch.zeros(64), torch.ones(64)]).long()
    with Observer(checks=CHECKS) as obs:
        for step in range(steps):
            i = torch.randint(0, 1000, (64,), generator=g)
            j = torch.randint(0, 1000, (64,), generator=g)
            fs, ft = feat(xs[i]), feat(xt[j])
            lam = 2.0 / (1.0 + torch.exp(torch.tensor(-10.0 * step / steps)).item()) - 1.0
            both = torch.cat([fs, ft])
            rev = GradReverse.apply(both, lam) if reverse == "lambda" else ReverseOnce.apply(both)
            loss = F.cross_entropy(clf(fs), ys[i]) + F.cross_entropy(dom(rev), domain)
            opt.zero_grad()
            loss.backward()
            opt.step()
    return obs


@pytest.mark.parametrize("reverse", ["lambda", "neg"])
def test_domain_adversarial_training_is_recognised_and_its_rising_loss_is_not_a_warning(reverse):
    obs = _dann(reverse)
    found = obs.report().by_code(CODE)
    assert len(found) == 1 and found[0].severity is Severity.INFO
    assert found[0].evidence["factor_max"] > 0
    warned = {f.code for f in obs.report().findings if f.severity is not Severity.INFO}
    assert not warned & {"loss-curve.goes-up", "loss-curve.oscillates", "lr.too-high", "fit.underfitting"}


def test_a_straight_through_estimator_and_a_reversal_with_nothing_after_it_are_not_adversarial():
    """A custom function passing the gradient unchanged is no reversal; a reversal right before the
    loss (no parameters after it) maximises the whole loss: a flipped sign, left to the curve checks."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(256, 8, generator=g)
    y = (x[:, 0] > 0).long()
    for fn in (StraightThrough.apply, ReverseOnce.apply):
        torch.manual_seed(0)
        model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 2))
        opt = torch.optim.SGD(model.parameters(), lr=0.05)
        with Observer(checks=CHECKS) as obs:
            for step in range(200):
                i = (step * 32) % 224
                h = model[0](x[i:i + 32])
                loss = F.cross_entropy(model[2](F.relu(fn(h))) if fn is StraightThrough.apply
                                       else fn(model(x[i:i + 32])), y[i:i + 32])
                opt.zero_grad()
                loss.backward()
                opt.step()
        assert obs.report().by_code(CODE) == []
        if fn is ReverseOnce.apply:  # everything maximised: the loss climbs and is called out
            assert {"loss-curve.goes-up", "lr.too-high", "loss-curve.explodes"} & {
                f.code for f in obs.report().findings if f.severity is not Severity.INFO}


def test_reversal_factor():
    g = torch.randn(5, 3)
    assert reversal_factor(g, -0.3 * g) == pytest.approx(0.3)
    assert reversal_factor(g, g) is None
    assert reversal_factor(g, -0.3 * g + 0.1 * torch.randn(5, 3)) is None
    assert reversal_factor(g, -g[:2]) is None and reversal_factor(torch.zeros(3), torch.zeros(3)) is None
