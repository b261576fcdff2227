"""The remedies of nndoctor.fix.numeric_remedies: the op that made a NaN/Inf guarded at its line,
a gradient made non-finite at a line kept finite, and a log-likelihood minimised turned into its
negative. Each injected bug trains like its fixed twin; healthy code is bit-identical."""

from __future__ import annotations

import os

import torch
import torch.nn as nn
import torch.nn.functional as F
from helpers import apply_remedy as _apply

from nndoctor.fix.remedies import remedy_for

_FILE = os.path.basename(__file__)


def _data() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(3)
    x = torch.randn(96, 6, generator=g) * 100         # large inputs: confident logits, softmax underflows
    return x, (x[:, 0] + x[:, 1] > 0).long() + (x[:, 2] > 0).long()


def _log_probs(logits: torch.Tensor, bug: bool) -> torch.Tensor:
    if bug:
        return torch.log(torch.softmax(logits, dim=1))  # the bug: -inf once a probability underflows
    return F.log_softmax(logits, dim=1)


def _fit_nll(bug: bool, sign: float = -1.0) -> torch.Tensor:
    torch.manual_seed(0)
    x, y = _data()
    model = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 3))
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    for _ in range(25):
        log_p = _log_probs(model(x), bug)
        loss = sign * log_p.gather(1, y[:, None]).mean()    # sign +1: the minus of the NLL dropped
        opt.zero_grad()
        loss.backward()
        opt.step()
    return torch.cat([p.detach().flatten() for p in model.parameters()])


def test_log_of_an_underflowed_softmax_at_the_line_becomes_log_softmax_like_the_twin():
    twin, bug = _fit_nll(False), _fit_nll(True)
    site = f"{_FILE}:{_log_probs.__code__.co_firstlineno + 2}"
    with _apply("numerics.nonfinite-forward", "model.2", op="torch.log", site=site, module="model.2"):
        fixed = _fit_nll(True)
        healthy = _fit_nll(False)
        elsewhere = torch.log(torch.zeros(2))           # a log on another line is untouched
    assert not bool(torch.isfinite(bug).all()) and bool(torch.isfinite(twin).all())
    assert torch.equal(fixed, twin) and torch.equal(healthy, twin) and bool(torch.isinf(elsewhere).all())


def test_a_log_that_is_not_of_a_softmax_is_clamped_and_unknown_ops_have_no_remedy():
    site = f"{_FILE}:{_clamped_log.__code__.co_firstlineno + 1}"
    with _apply("numerics.nonfinite-forward", "loss", op="torch.log", site=site):
        out = _clamped_log(torch.tensor([0.0, 0.5]))
    assert torch.allclose(out, torch.log(torch.tensor([1e-8, 0.5])))
    assert remedy_for({"code": "numerics.nonfinite-forward", "evidence": {"op": "torch.std", "site": site}}) is None
    assert remedy_for({"code": "numerics.nonfinite-forward",
                       "evidence": {"op": "torch.log", "site": "the line that calls it"}}) is None


def _clamped_log(p: torch.Tensor) -> torch.Tensor:
    return torch.log(p)


def _distance(a: torch.Tensor, b: torch.Tensor, eps: float) -> torch.Tensor:
    return torch.sqrt(((a - b) ** 2).sum(1) + eps)  # eps 0: d sqrt / dx at 0 is inf for identical pairs


def _fit_siamese(eps: float) -> torch.Tensor:
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(4)
    x = torch.randn(64, 5, generator=g)
    partner = torch.where(torch.arange(64)[:, None] % 4 == 0, x, torch.randn(64, 5, generator=g))
    same = (torch.arange(64) % 4 == 0).float()
    net = nn.Sequential(nn.Linear(5, 8), nn.Tanh(), nn.Linear(8, 4))
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    for _ in range(20):
        d = _distance(net(x), net(partner), eps)
        loss = (same * d ** 2 + (1 - same) * F.relu(1.0 - d) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return torch.cat([p.detach().flatten() for p in net.parameters()])


def test_an_infinite_derivative_at_the_line_gets_a_finite_gradient_like_the_twin():
    twin, bug = _fit_siamese(1e-8), _fit_siamese(0.0)
    site = f"{_FILE}:{_distance.__code__.co_firstlineno + 1}"
    with _apply("numerics.nonfinite-gradient", site, params=["0.weight"], hint=" (likely sqrt ...)"):
        fixed = _fit_siamese(0.0)
        healthy = _fit_siamese(1e-8)                 # the same line with finite gradients: bit-identical
    assert not bool(torch.isfinite(bug).all())
    assert torch.equal(healthy, twin) and torch.allclose(fixed, twin, atol=1e-3)
    assert remedy_for({"code": "numerics.nonfinite-gradient", "location": "0.weight", "evidence": {}}) is None


def test_a_log_likelihood_minimised_is_negated_like_the_twin_and_a_cross_entropy_is_untouched():
    twin, bug = _fit_nll(False), _fit_nll(False, sign=1.0)
    with _apply("loss-curve.log-likelihood-minimised", "loss", graph="mean <- gather <- log_softmax"):
        fixed = _fit_nll(False, sign=1.0)
        healthy = _fit_nll(False)
        w = torch.ones(3, requires_grad=True)
        F.cross_entropy(w[None] * torch.tensor([[1.0, 2.0, 3.0]]), torch.tensor([0])).backward()
    assert torch.equal(fixed, twin) and torch.equal(healthy, twin) and not torch.equal(bug, twin)
    assert float(w.grad[0]) < 0                       # the cross-entropy still raises the true class


def _fit_long(steps: int) -> torch.Tensor:
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(7)
    x = torch.rand(16, 1, generator=g) * 6 - 3
    y = torch.sin(x) + 0.4 * torch.randn(16, 1, generator=g)
    model = nn.Sequential(nn.Linear(1, 32), nn.ReLU(), nn.Linear(32, 1))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(steps):
        loss = F.mse_loss(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return torch.cat([p.detach().flatten() for p in model.parameters()])


def test_overfitting_stops_at_the_best_validation_step_like_the_twin():
    twin, bug = _fit_long(30), _fit_long(90)
    with _apply("fit.overfitting", "training", best_step=30, best_val_loss=0.2):
        fixed = _fit_long(90)
    with _apply("fit.overfitting", "training", best_step=30, best_val_loss=0.2):
        healthy = _fit_long(30)                       # a run that ends by then is untouched
    assert torch.equal(fixed, twin) and torch.equal(healthy, twin) and not torch.equal(bug, twin)
    assert remedy_for({"code": "fit.overfitting", "evidence": {"best_step": "unknown: evaluate every epoch"}}) is None
