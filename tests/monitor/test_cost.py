"""What nndoctor costs between samples: evaluation loops on sampled steps, loops without optimizer."""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.overrides import _get_current_function_mode

from nndoctor.checks import Check
from nndoctor.monitor import Observer, Schedule
from nndoctor.monitor.observer.steps import CURVE_EVERY, next_curve_read


def _eval_at_sampled_steps(observer: Observer | None) -> tuple[list[torch.Tensor], list[tuple[int, bool, bool]]]:
    """Train 12 steps; before each step a multiple of 5 (a sampled one under Schedule(1, 5)),
    a 40-batch evaluation loop. Records (step, heavy, in evaluation) per forward."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 16), nn.Tanh(), nn.Linear(16, 3))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    x, y = torch.randn(32, 6), torch.randint(0, 3, (32,))
    seen: list[tuple[int, bool, bool]] = []
    heavy = (lambda: observer._heavy) if observer is not None else (lambda: False)
    if observer is not None:
        observer.__enter__()
    try:
        for step in range(12):
            if step % 5 == 0 and step:
                model.eval()
                with torch.no_grad():
                    for _ in range(40):
                        F.cross_entropy(model(x), y)
                        seen.append((step, heavy(), True))
                model.train()
            opt.zero_grad()
            loss = F.cross_entropy(model(x), y)
            seen.append((step, heavy(), False))
            loss.backward()
            opt.step()
    finally:
        if observer is not None:
            observer.__exit__(None, None, None)
    return [p.detach().clone() for p in model.parameters()], seen


def test_an_evaluation_loop_on_a_sampled_step_stops_the_probes_and_training_resumes_them():
    bare, _ = _eval_at_sampled_steps(None)
    obs = Observer(schedule=Schedule(dense=1, every=5, max_stretch=1))
    watched, seen = _eval_at_sampled_steps(obs)
    assert all(torch.equal(a, b) for a, b in zip(bare, watched)) and not obs.internal_errors
    for step in (5, 10):
        evals = [h for s, h, ev in seen if s == step and ev]
        assert evals[:16] == [True] * 16 and not any(evals[16:])  # looked closely at 16 forwards, then not
        assert [h for s, h, ev in seen if s == step and not ev] == [True]  # the step itself: sampled
    assert not any(h for s, h, ev in seen if s in (6, 7, 8, 9, 11) and not ev)
    assert len(obs.state.eval_losses) > 0  # the evaluation losses are still recorded


def test_a_loop_without_optimizer_leaves_no_function_mode_behind():
    torch.manual_seed(0)
    w1 = torch.randn(8, 16, requires_grad=True)
    w2 = torch.randn(16, 2, requires_grad=True)
    x, y = torch.randn(32, 8), torch.randn(32, 2)
    modes = []
    with Observer(schedule=Schedule(dense=3, every=10, max_stretch=1)) as obs:
        for _ in range(25):
            loss = (x.mm(w1).clamp(min=0).mm(w2) - y).pow(2).mean()
            loss.backward()
            with torch.no_grad():
                for w in (w1, w2):
                    w -= 1e-3 * w.grad
                    w.grad.zero_()
            modes.append((obs.state.step, _get_current_function_mode() is not None))
    assert obs.report().facts["steps"] == 25 and not obs.internal_errors  # each backward counted once
    # the mode is on the stack for sampled steps only (dense 3, then steps 11 and 21)
    assert [step for step, on in modes if on] == [2, 3, 11, 21]


class _CurveReads(Check):
    code = "loss-curve.plateaus"  # any declared code (nothing is reported)
    needs = ("curve",)

    def __init__(self, state):
        super().__init__(state)
        self.at: list[int] = []

    def check(self, event):
        self.at.append(self.state.losses.total)
        return ()


class _WarnsAtRead(_CurveReads):
    """Finds something (a warning) at its read of ``at_total`` losses."""

    at_total = 200

    def check(self, event):
        super().check(event)
        return [self.finding("found")] if self.state.losses.total == self.at_total else ()


def _reads(quiet: bool, until: int = 15_000) -> list[int]:
    totals, total = [], CURVE_EVERY
    while total <= until:
        totals.append(total)
        total = next_curve_read(total, quiet=quiet)
    return totals


def _curve_reads(check: type[Check], steps: int = 400) -> list[int]:
    torch.manual_seed(0)
    model = nn.Linear(4, 2)
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    x, y = torch.randn(16, 4), torch.randint(0, 2, (16,))
    with Observer(model, opt, checks=[check]) as obs:
        for _ in range(steps):
            opt.zero_grad()
            F.cross_entropy(model(x), y).backward()
            opt.step()
    assert not obs.internal_errors
    return obs.checks[0].at


def test_the_loss_curve_is_read_every_25_losses_at_first_then_every_quarter_of_the_run():
    """... or every half of it while the run has found nothing (a read costs ~1 ms on a long history)."""
    found, quiet = _reads(quiet=False), _reads(quiet=True)
    assert found[:8] == quiet[:8] == list(range(25, 201, 25))  # the reads that judge short runs: unchanged
    assert len([t for t in found if t <= 1500]) == 17 and len(found) == 27  # 25 and ~45 at 1/8
    assert len([t for t in quiet if t <= 1500]) == 12 and len(quiet) == 18  # (were 17 and 27)
    assert all(b - a <= a // 2 for a, b in zip(quiet[7:], quiet[8:]))  # never more than half the run unread
    assert _curve_reads(_CurveReads) == [t for t in quiet if t <= 400]


def test_a_run_that_found_something_is_read_as_often_as_before_from_its_next_read_on():
    assert _curve_reads(_WarnsAtRead) == [t for t in _reads(quiet=False) if t <= 400]  # 250, 312, 390 (quiet: 300)


def test_no_heap_scan_for_a_scheduler_when_none_is_attached(monkeypatch):
    """The scheduler look-ups of the schedule checks scan the optimizer's referrers (tens of ms in a large
    process, at every curve read and at the end): without a scheduler there is nothing to find."""
    import gc

    calls: list[int] = []
    real = gc.get_referrers
    monkeypatch.setattr(gc, "get_referrers", lambda *a: calls.append(1) or real(*a))
    torch.manual_seed(0)
    x, y = torch.randn(256, 8), torch.randint(0, 2, (256,))

    def run(scheduled: bool) -> None:
        model = nn.Linear(8, 2)
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        sched = torch.optim.lr_scheduler.StepLR(opt, 50) if scheduled else None
        with Observer():
            for i in range(120):
                loss = F.cross_entropy(model(x[(i * 32) % 224:][:32]), y[(i * 32) % 224:][:32])
                opt.zero_grad()
                loss.backward()
                opt.step()
                if sched is not None:
                    sched.step()

    run(scheduled=False)
    assert calls == []
    run(scheduled=True)
    assert calls  # (a scheduler is there: it is looked up)
