"""loss-curve.log-likelihood-minimised: a log-likelihood (<= 0) minimised instead of its negative."""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from nndoctor import rootcause
from nndoctor.catalogue import finding
from nndoctor.monitor import Observer
from nndoctor.monitor.checks.loss_sign import LogLikelihoodMinimised

CODE = "loss-curve.log-likelihood-minimised"


def _data(n=256, d=10, k=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=g)
    return x, x[:, :k].argmax(dim=1)


class Clf(nn.Module):
    def __init__(self, d=10, k=3):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(d, 32), nn.Linear(32, k)

    def forward(self, x):
        return self.fc2(torch.relu(self.fc1(x)))


def _train(model, loss_of, opt=None, steps=30):
    x, y = _data()
    opt = opt or torch.optim.SGD(model.parameters(), lr=0.05)
    with Observer(checks=[LogLikelihoodMinimised]) as obs:
        for i in range(steps):
            j = (i * 32) % 224
            loss = loss_of(model(x[j:j + 32]), y[j:j + 32])
            opt.zero_grad()
            loss.backward()
            opt.step()
    return [f for f in obs.findings if f.code == CODE]


def test_manual_nll_with_the_minus_dropped_adam():
    torch.manual_seed(0)
    model = Clf()
    found = _train(model, lambda z, y: torch.log_softmax(z, 1).gather(1, y[:, None]).mean(),
                   torch.optim.Adam(model.parameters(), lr=1e-3))
    assert len(found) == 1
    ev = found[0].evidence
    assert ev["last_loss"] < ev["first_loss"] < 0 and ev["objective_sign_flipped"] is True
    assert "log_softmax" in ev["graph"] and found[0].severity.name == "ERROR"


def test_negated_cross_entropy_sequential_sgd():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(10, 32), nn.Tanh(), nn.Linear(32, 3))
    assert len(_train(model, lambda z, y: -F.cross_entropy(z, y))) == 1


def test_double_negated_log_of_softmax_and_nll_of_negated_log_probs():
    torch.manual_seed(0)
    logp = lambda z: torch.log(torch.softmax(z, dim=1))  # noqa: E731
    assert len(_train(Clf(), lambda z, y: (-logp(z)[torch.arange(len(y)), y]).neg().mean())) == 1
    model = nn.Sequential(nn.Linear(10, 16), nn.ReLU(), nn.Linear(16, 3), nn.LogSoftmax(dim=1))
    assert len(_train(model, lambda z, y: nn.NLLLoss()(-z, y))) == 1


def test_correct_likelihood_losses_are_quiet():
    torch.manual_seed(0)
    assert _train(Clf(), lambda z, y: -torch.log_softmax(z, 1).gather(1, y[:, None]).mean()) == []
    assert _train(Clf(), F.cross_entropy) == []
    assert _train(Clf(), lambda z, y: F.nll_loss(F.log_softmax(z, 1), y)) == []


def test_maximised_log_likelihood_and_weighted_log_probs_are_quiet():
    torch.manual_seed(0)
    model = Clf()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, maximize=True)
    assert _train(model, lambda z, y: torch.log_softmax(z, 1).gather(1, y[:, None]).mean(), opt) == []
    adv = torch.randn(32, 1)  # policy gradient: log-probs weighted by a signed advantage
    assert _train(Clf(), lambda z, y: -(torch.log_softmax(z, 1).gather(1, y[:, None]) * adv).mean()) == []
    # a Gaussian negative log-density can be negative: no log-probability of a softmax in it
    assert _train(Clf(), lambda z, y: F.gaussian_nll_loss(z[:, :1], y[:, None].float(),
                                                          torch.full((32, 1), 1e-3))) == []


def _f(code, step=1, **ev):
    return finding(code, "m", ev, location="model", first_step=step)


def test_the_flipped_sign_heads_the_lr_and_curve_symptoms_it_causes():
    sign = _f(CODE, step=3, objective_sign_flipped=True, first_loss=-1.0, last_loss=-50.0)
    lr = _f("lr.too-high", step=20, update_ratio_median=0.1)
    explode = _f("loss-curve.explodes", step=20)
    grad = _f("grad.exploding-gradients", step=30)
    linked = rootcause.link([lr, explode, grad, sign])
    head = rootcause.headline(linked)
    assert head is not None and head.code == CODE
    assert all(sign.key in f.caused_by for f in linked if f.code != CODE)
    assert next(f for f in linked if f.code == CODE).caused_by == ()
    # a wrong loss input (NLL fed negated log-probabilities) is upstream of it
    nll = _f("loss-input.logits-into-nll-loss", step=1)
    linked = rootcause.link([sign, nll, lr])
    assert rootcause.headline(linked).code == "loss-input.logits-into-nll-loss"
