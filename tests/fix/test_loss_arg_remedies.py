"""Remedies of preprocessing.margin-loss-targets-not-signed (labels mapped onto -1 / +1),
loss-input.rate-into-poisson-log-input (log_input the other way), data.class-weights-inverted (the
weights inverted), regularization.label-smoothing-too-strong (0.1) and
train-mode.batchnorm-stats-frozen (momentum 0.1): each injected bug, found by its detector
in-process, trains like its fixed twin under the remedy; the healthy twin is left bit-identical."""

from __future__ import annotations

from typing import Callable

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from helpers import finding_of, remedied

from nndoctor.debug.margin_targets import MarginLossTargets
from nndoctor.debug.poisson_input import PoissonLogInput
from nndoctor.monitor import Schedule
from nndoctor.monitor.checks.bn_frozen_stats import FrozenBatchNormStats
from nndoctor.monitor.checks.data.class_weights import ClassWeightsInverted
from nndoctor.monitor.checks.label_smoothing import LabelSmoothingTooStrong

SCHED = Schedule(dense=4, every=2)
_G = torch.Generator().manual_seed(0)
X = torch.randn(512, 6, generator=_G)
Y01 = (X[:, 0] + 0.5 * X[:, 1] > 0).float()


def _train(step: Callable[[nn.Module, int], torch.Tensor], out: int = 1, steps: int = 48,
           make: Callable[[], nn.Module] | None = None) -> nn.Module:
    torch.manual_seed(0)
    model = make() if make else nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, out))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for s in range(steps):
        opt.zero_grad()
        step(model, s % 16 * 32).backward()
        opt.step()
    return model


def _params(model: nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in model.parameters()]


def _same(a: nn.Module, b: nn.Module) -> bool:
    return all(torch.equal(p, q) for p, q in zip(_params(a), _params(b)))


# -- margin losses given {0, 1} labels ------------------------------------------------------------
def _score(loss: Callable[..., torch.Tensor], signed: bool) -> Callable[[nn.Module, int], torch.Tensor]:
    y = Y01 * 2 - 1 if signed else Y01
    return lambda m, i: loss(m(X[i:i + 32]).squeeze(1), y[i:i + 32])


def _ranking(loss: Callable[..., torch.Tensor], signed: bool) -> Callable[[nn.Module, int], torch.Tensor]:
    def step(m: nn.Module, i: int) -> torch.Tensor:
        a, b = m(X[i:i + 16]).squeeze(1), m(X[i + 16:i + 32]).squeeze(1)
        higher = (X[i:i + 16, 0] > X[i + 16:i + 32, 0]).float()
        return loss(a, b, higher * 2 - 1 if signed else higher)
    return step


def _pairs(loss: Callable[..., torch.Tensor], signed: bool) -> Callable[[nn.Module, int], torch.Tensor]:
    def step(m: nn.Module, i: int) -> torch.Tensor:
        same = (Y01[i:i + 16] == Y01[i + 16:i + 32]).float()
        return loss(m(X[i:i + 16]), m(X[i + 16:i + 32]), target=same * 2 - 1 if signed else same)
    return step


@pytest.mark.parametrize("style,loss,out", [  # (F.* looked up at the call, as a script's line does)
    (_score, nn.SoftMarginLoss(), 1), (_score, lambda a, b: F.soft_margin_loss(a, b), 1),
    (_ranking, nn.MarginRankingLoss(margin=0.5), 1),
    (_pairs, lambda a, b, target: F.cosine_embedding_loss(a, b, target=target), 4)])
def test_zero_one_labels_to_a_margin_loss_become_signed(style, loss, out):
    finding = finding_of(lambda: _train(style(loss, False), out, steps=8), [MarginLossTargets],
                       "preprocessing.margin-loss-targets-not-signed", schedule=SCHED)
    bug, twin = _train(style(loss, False), out), _train(style(loss, True), out)
    with remedied(finding):
        fixed, healthy = _train(style(loss, False), out), _train(style(loss, True), out)
    assert not _same(bug, twin)
    assert _same(fixed, twin) and _same(healthy, twin)


# -- PoissonNLLLoss's log_input contradicting the model's output -------------------------------------
COUNTS = torch.poisson(torch.exp(0.8 * X[:, 0] + 0.3 * X[:, 1]), generator=_G)


def _poisson(call: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
             rate: bool) -> Callable[[nn.Module, int], torch.Tensor]:
    def step(m: nn.Module, i: int) -> torch.Tensor:
        out = m(X[i:i + 32]).squeeze(1)
        return call(F.softplus(out) if rate else out, COUNTS[i:i + 32])
    return step


@pytest.mark.parametrize("bug_call,twin_call,rate", [
    (nn.PoissonNLLLoss(), nn.PoissonNLLLoss(log_input=False), True),
    (lambda a, b: F.poisson_nll_loss(a, b, True), lambda a, b: F.poisson_nll_loss(a, b, False), True),
    (lambda a, b: F.poisson_nll_loss(a, b, log_input=False), lambda a, b: F.poisson_nll_loss(a, b), False)])
def test_poisson_log_input_is_read_the_way_the_model_outputs(bug_call, twin_call, rate):
    finding = finding_of(lambda: _train(_poisson(bug_call, rate), steps=8), [PoissonLogInput],
                       "loss-input.rate-into-poisson-log-input", schedule=SCHED)
    bug, twin = _train(_poisson(bug_call, rate)), _train(_poisson(twin_call, rate))
    with remedied(finding):
        fixed, healthy = _train(_poisson(bug_call, rate)), _train(_poisson(twin_call, rate))
    assert not _same(bug, twin)
    assert _same(fixed, twin) and _same(healthy, twin)


# -- class weights from the frequency --------------------------------------------------------------------
def _imbalanced(n: int = 1200) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    y = torch.multinomial(torch.tensor((0.85, 0.1, 0.05)), n, replacement=True, generator=g)
    return torch.randn(3, 8, generator=g)[y] * 0.7 + torch.randn(n, 8, generator=g), y


def _weighted(weight: torch.Tensor, module: bool, steps: int = 150) -> float:
    """Balanced accuracy after training with cross-entropy weighted by ``weight``."""
    x, y = _imbalanced()
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 3))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    crit = nn.CrossEntropyLoss(weight=weight) if module else (lambda o, t: F.cross_entropy(o, t, weight=weight))
    for s in range(steps):
        b = torch.arange(s * 64, s * 64 + 64) % len(x)
        opt.zero_grad()
        crit(model(x[b]), y[b]).backward()
        opt.step()
    with torch.no_grad():
        pred = model(x).argmax(1)
    return float(sum((pred[y == k] == k).float().mean() for k in range(3)) / 3)


def test_class_weights_from_the_frequency_are_inverted():
    _, y = _imbalanced()
    counts = torch.bincount(y).float()
    frequency, inverse = counts / counts.sum(), counts.sum() / counts
    finding = finding_of(lambda: _weighted(frequency, True, steps=40), [ClassWeightsInverted],
                       "data.class-weights-inverted", schedule=SCHED)
    for module in (True, False):
        bug, twin = _weighted(frequency, module), _weighted(inverse, module)
        with remedied(finding):
            fixed, healthy = _weighted(frequency, module), _weighted(inverse, module)
            unweighted = _weighted(torch.ones(3), module)
        assert twin > bug + 0.1, (bug, twin)
        assert abs(fixed - twin) <= 0.02, (fixed, twin)  # the same weights up to a scale (mean reduction)
        assert healthy == twin and unweighted == _weighted(torch.ones(3), module)


# -- label smoothing that leaves no class ------------------------------------------------------------------
def _smoothed(eps: float, module: bool) -> Callable[[nn.Module, int], torch.Tensor]:
    yk = (X[:, 0] > 0).long() + (X[:, 1] > 0).long()
    crit = nn.CrossEntropyLoss(label_smoothing=eps) if module else \
        (lambda o, t: F.cross_entropy(o, t, label_smoothing=eps))
    return lambda m, i: crit(m(X[i:i + 32]), yk[i:i + 32])


def test_label_smoothing_of_one_becomes_the_usual_tenth():
    finding = finding_of(lambda: _train(_smoothed(1.0, True), 3, steps=8), [LabelSmoothingTooStrong],
                       "regularization.label-smoothing-too-strong", schedule=SCHED)
    for module in (True, False):
        bug, twin = _train(_smoothed(1.0, module), 3), _train(_smoothed(0.1, module), 3)
        with remedied(finding):
            fixed, healthy = _train(_smoothed(1.0, module), 3), _train(_smoothed(0.1, module), 3)
            plain = _train(_smoothed(0.0, module), 3)
        assert not _same(bug, twin)
        assert _same(fixed, twin) and _same(healthy, twin) and _same(plain, _train(_smoothed(0.0, module), 3))


# -- batch norms whose statistics never move -----------------------------------------------------------
XB = torch.randn(512, 10, generator=_G) * 3 + 2
YB = (XB[:, :3].sum(1) > 6).long()


def _bn(momentum: float | None, epochs: int = 3) -> tuple[nn.Module, float]:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(10, 32), nn.BatchNorm1d(32, momentum=momentum), nn.ReLU(), nn.Linear(32, 2))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(epochs):
        model.train()
        for i in range(0, 512, 32):
            opt.zero_grad()
            F.cross_entropy(model(XB[i:i + 32]), YB[i:i + 32]).backward()
            opt.step()
        model.eval()
        with torch.no_grad():
            acc = float((model(XB).argmax(1) == YB).float().mean())
    return model, acc


def test_batchnorm_with_momentum_zero_tracks_its_statistics():
    finding = finding_of(lambda: _bn(0.0), [FrozenBatchNormStats], "train-mode.batchnorm-stats-frozen", schedule=SCHED)
    (_, bug_acc), (twin, twin_acc) = _bn(0.0), _bn(0.1)
    with remedied(finding):
        (fixed, fixed_acc), (healthy, _) = _bn(0.0), _bn(0.1)
        cumulative, _ = _bn(None)
    assert twin_acc > bug_acc + 0.1, (bug_acc, twin_acc)
    assert _same(fixed, twin) and fixed_acc == twin_acc and _same(healthy, twin)
    assert _same(cumulative, _bn(None)[0])
