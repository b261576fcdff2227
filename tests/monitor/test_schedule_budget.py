"""lr.schedule-collapses, read from the loss: a schedule that decays the rate to ~0 (below 10% of its peak,
without reaching 1% early enough for the early-collapse rule) while the loss still fell as steeply as it
began (a Keras inverse-time decay per batch, an ExponentialLR gamma or MultiStepLR milestones that kill the
rate in the first epochs). Schedules that end at ~0 on purpose (cosine, one-cycle, warm restarts, a step
decay after the loss flattened, a gentle gamma) stay quiet."""

from __future__ import annotations

from typing import Any, Callable

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

from nndoctor.findings import Severity
from nndoctor.monitor import Observer
from nndoctor.monitor.checks.schedule import ScheduleCollapses
from nndoctor.monitor.checks.stopped import StoppedWhileImproving

CODE = "lr.schedule-collapses"
G = torch.Generator().manual_seed(0)
X = torch.randn(512, 10, generator=G)
Y = (X[:, :3].sum(1) > 0).long()


def _observe(fn: Callable[[], None]) -> list:
    torch.manual_seed(0)
    with Observer(checks=[ScheduleCollapses, StoppedWhileImproving]) as obs:
        fn()
    assert not obs.internal_errors, obs.internal_errors
    return [(f.code, f.severity, f.evidence) for f in obs.findings]


def _mlp() -> nn.Module:
    return nn.Sequential(nn.Linear(10, 32), nn.Tanh(), nn.Linear(32, 2))


def _epochs(epochs: int, lr: float, scheduler: Callable[[Any], Any] | None = None, per_batch: bool = False,
            lr_at: Callable[[int], float] | None = None) -> Callable[[], None]:
    def run():
        model = _mlp()
        opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
        loader = DataLoader(TensorDataset(X, Y), batch_size=32, shuffle=True)
        sched = scheduler(opt) if scheduler else None
        it = 0
        for _ in range(epochs):
            for xb, yb in loader:
                if lr_at is not None:
                    for group in opt.param_groups:
                        group["lr"] = lr_at(it)
                opt.zero_grad()
                F.cross_entropy(model(xb), yb).backward()
                opt.step()
                it += 1
                if sched is not None and per_batch:
                    sched.step()
            if sched is not None and not per_batch:
                sched.step()
    return run


def _decayed_too_fast(found: list) -> dict:
    assert [(c, s) for c, s, _ in found] == [(CODE, Severity.WARNING)], found
    ev = found[0][2]
    assert "collapsed_step" not in ev and ev["effective_steps"] < 0.5 * ev["steps"]  # the loss rule, not 1%-early
    return ev


def test_exponential_gamma_that_kills_the_rate_in_the_first_epochs():
    ev = _decayed_too_fast(_observe(_epochs(12, 0.01, lambda o: torch.optim.lr_scheduler.ExponentialLR(o, 0.5))))
    assert ev["lr_now"] < 0.1 * ev["peak_lr"] and ev["projected_gain"] >= 0.2
    assert _observe(_epochs(12, 0.01, lambda o: torch.optim.lr_scheduler.ExponentialLR(o, 0.95))) == []


def test_keras_inverse_time_decay_applied_per_batch():
    _decayed_too_fast(_observe(_epochs(12, 0.01, lr_at=lambda t: 0.01 / (1 + 0.1 * t))))
    assert _observe(_epochs(12, 0.05, lr_at=lambda t: 0.05 / (1 + 1e-4 * t))) == []


def test_multistep_milestones_too_early_in_a_full_batch_loop():
    def run(milestones: list[int], lr: float = 0.02) -> Callable[[], None]:
        def loop():
            model = _mlp()
            opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
            sched = torch.optim.lr_scheduler.MultiStepLR(opt, milestones=milestones, gamma=0.1)
            for _ in range(60):
                opt.zero_grad()
                F.cross_entropy(model(X), Y).backward()
                opt.step()
                sched.step()
        return loop

    found = _observe(run([20, 40]))
    _decayed_too_fast(found)
    assert found[0][2]["slower"] >= 2
    assert _observe(run([40, 50], lr=0.2)) == []  # decayed after the loss flattened


def test_schedules_that_end_at_zero_on_purpose_are_quiet():
    cosine = _epochs(12, 0.05, lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, 12))
    onecycle = _epochs(10, 0.1, lambda o: torch.optim.lr_scheduler.OneCycleLR(o, max_lr=0.1, total_steps=160),
                       per_batch=True)
    restarts = _epochs(10, 0.05, lambda o: torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(o, T_0=32),
                       per_batch=True)
    step_after = _epochs(15, 0.05, lambda o: torch.optim.lr_scheduler.StepLR(o, 10, 0.1))
    for name, fn in (("cosine", cosine), ("onecycle", onecycle), ("restarts", restarts), ("step", step_after)):
        assert _observe(fn) == [], name
