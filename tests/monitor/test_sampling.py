"""The sampling schedule: dense first steps, 1 in ``every``, rarer while the run stays quiet."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn as nn

from nndoctor.checks import Check
from nndoctor.findings import Severity
from nndoctor.monitor import Observer, Schedule
from nndoctor.monitor.checks.data import probe as probe_mod


def _sampled(schedule: Schedule, steps: int, alarm_at: int | None = None) -> list[int]:
    """The clocks sampled in ``steps`` steps, as the observer drives the schedule."""
    out: list[int] = []
    alarms = 0
    for clock in range(steps):
        if alarm_at is not None and clock >= alarm_at:
            alarms = 1
        if schedule.sampled(clock):
            if clock >= schedule.dense and not (out and out[-1] == clock - 1):
                schedule.on_sample(clock, alarms)
            out.append(clock)
    return out


def test_quiet_run_is_sampled_more_rarely_but_the_start_is_unchanged():
    s = _sampled(Schedule(), 15_000)
    assert s[:13] == [0, 1, 2, 3, 4, 5, 6, 7, 50, 100, 150, 200, 250]  # as before: dense, then 1 in 50
    gaps = np.diff(s[8:])
    assert all(b >= a for a, b in zip(gaps, gaps[1:]))  # never denser while quiet
    assert gaps.max() == 1600  # capped at every * max_stretch
    assert len([c for c in s if c < 1500]) <= 18 and len(s) <= 30  # 38 and 308 at 1 in 50


def test_once_stretched_the_period_doubles_after_fewer_quiet_samples():
    s = _sampled(Schedule(), 5000)
    later = [c for c in s if c >= 250]
    # 5 quiet samples at 1 in 50 before the first doubling, then 2 at each longer period
    assert np.diff(later).tolist()[:7] == [50, 100, 200, 200, 400, 400, 800]  # (aligned to multiples)
    slow = _sampled(Schedule(relax_later=5), 5000)
    assert len(slow) > len(s)
    with pytest.raises(ValueError):
        Schedule(relax_later=0)


def test_an_alarm_or_a_boost_brings_back_one_in_every():
    s = _sampled(Schedule(), 3000, alarm_at=1700)
    after = [c for c in s if c > 1700]
    assert np.diff(after[:4]).tolist() == [50, 50, 50]  # back to 1 in 50 after the first sample
    sched = Schedule()
    _sampled(sched, 2000)
    assert sched.period > sched.every
    sched.boost(2000, 3)
    assert sched.period == sched.every and sched.sampled(2003) and sched.sampled(2050)


def test_max_stretch_one_keeps_the_old_schedule():
    s = _sampled(Schedule(max_stretch=1), 1500)
    assert s == list(range(8)) + list(range(50, 1500, 50))
    with pytest.raises(ValueError):
        Schedule(max_stretch=0)
    with pytest.raises(ValueError):
        Schedule(relax_after=0)


class _StepCounter(Check):
    code = "loss-curve.plateaus"  # any declared code: the catalogue makes the finding
    needs = ("step",)
    step_phases = frozenset({"post"})
    sampled_only = frozenset({"step"})
    alarm_at = 10**9

    def __init__(self, state):
        super().__init__(state)
        self.steps: list[int] = []

    def check(self, event):
        self.steps.append(event.step)
        if event.step >= self.alarm_at:
            return [self.finding("test alarm", {}, location="x", severity=Severity.WARNING)]
        return ()


def _run(steps: int, alarm_at: int) -> list[int]:
    torch.manual_seed(0)
    model = nn.Linear(4, 2)
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    x, y = torch.randn(16, 4), torch.randint(0, 2, (16,))
    _StepCounter.alarm_at = alarm_at
    with Observer(model, opt, checks=[_StepCounter], schedule=Schedule(dense=2, every=10)) as obs:
        for _ in range(steps):
            opt.zero_grad()
            nn.functional.cross_entropy(model(x), y).backward()
            opt.step()
    return obs.checks[0].steps


def test_observer_stretches_the_period_while_quiet_and_tightens_it_on_a_warning():
    quiet = _run(600, alarm_at=10**9)
    assert quiet[:7] == [1, 2, 11, 21, 31, 41, 51]
    assert len(quiet) < 16 and np.diff(quiet).max() == 160  # 62 samples at 1 in 10
    noisy = _run(600, alarm_at=200)
    late = [s for s in noisy if s > 300]
    assert np.diff(late).max() == 10  # a warning: 1 in every from then on
    assert len(noisy) > len(quiet)


def test_mlp_probe_stops_early_on_noise_and_trains_on_signal():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((600, 20))
    calls = []
    orig = probe_mod._held_out_loss

    def counting(*a, **k):
        calls.append(1)
        return orig(*a, **k)

    probe_mod._held_out_loss = counting
    try:
        noise = np.exp(probe_mod._mlp(x[:300], rng.integers(0, 3, 300), x[300:], 3, 0))
        checks_noise = len(calls)
        calls.clear()
        y = (x[:, 0] > 0).astype(np.int64) + (x[:, 1] > 0)
        signal = np.exp(probe_mod._mlp(x[:300], y[:300], x[300:], 3, 0))
    finally:
        probe_mod._held_out_loss = orig
    assert np.allclose(noise.sum(1), 1.0) and np.allclose(signal.sum(1), 1.0)
    assert 0 < checks_noise < probe_mod.MLP_ITERATIONS // 10  # stopped early: nothing to learn
    assert (signal.argmax(1) == y[300:]).mean() > 0.65  # (the majority class: 0.5; the 300-step probe before: 0.71)


def test_mlp_probe_iterations_make_no_torch_tensor_calls(monkeypatch):
    """The probe's ~70-300 full-batch steps on tiny matrices run in numpy: a torch call costs 3-8x
    a numpy one there (torch's softmax over 10 classes, its small matrix products), and the end of
    a run waits for them. Only the private generator's draws are torch's."""
    calls = []
    for name in ("mm", "addmm", "softmax", "relu", "sum", "log_softmax", "tensor"):
        real = getattr(probe_mod.torch, name)
        monkeypatch.setattr(probe_mod.torch, name, lambda *a, _r=real, _n=name, **k: calls.append(_n) or _r(*a, **k))
    rng = np.random.default_rng(1)
    x = rng.standard_normal((400, 12))
    y = (x[:, 0] > 0).astype(np.int64)
    out = np.exp(probe_mod._mlp(x[:200], y[:200], x[200:], 2, 0))
    assert calls == []
    assert np.allclose(out.sum(1), 1.0) and (out.argmax(1) == y[200:]).mean() > 0.8


def test_mlp_probe_is_silent_on_huge_or_constant_features():
    """numpy warns where torch's arithmetic was silent (overflow, 0/0): the probe's loop keeps quiet,
    a user's run must not print them."""
    import warnings

    rng = np.random.default_rng(2)
    y = rng.integers(0, 3, 300)
    for x in (rng.standard_normal((300, 10)) * 1e30, np.c_[rng.standard_normal((300, 9)), np.zeros(300)]):
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            out = probe_mod._mlp(x[:200], y[:200], x[200:], 3, 0)
        assert out.shape == (100, 3) and np.isfinite(out).all()
