"""The end-of-run analysis keeps to its budget: by value, and what it leaves out is noted."""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from nndoctor.checks import Check
from nndoctor.monitor import Observer, ending
from nndoctor.monitor.checks.data.probe import affordable, probe_seconds
from nndoctor.monitor.events import RunEnd


def _train(observer: Observer, steps: int = 12) -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    x, y = torch.randn(16, 4), torch.randint(0, 2, (16,))
    with observer:
        for _ in range(steps):
            opt.zero_grad()
            F.cross_entropy(model(x), y).backward()
            opt.step()


def _checks(log: list[str], slow_s: float) -> list[type[Check]]:
    class SlowEnd(Check):
        code = "grad-flow.test-slow-end"
        needs = ("end",)

        def check(self, event):
            log.append("slow")
            time.sleep(slow_s)
            return ()

    class LaterEnd(Check):
        code = "grad-flow.test-later-end"
        needs = ("end",)

        def check(self, event):
            log.append("later")
            return ()

    class CostlyEnd(Check):  # registered first, runs after the cheap ones; always called
        code = "grad-flow.test-costly-end"
        needs = ("end",)
        end_cost = 1

        def check(self, event):
            log.append(f"costly left={event.time_left() > 0}")
            if event.time_left() <= 0:
                event.skipped.append("CostlyEnd: its probes did not fit")
            return ()

    return [CostlyEnd, SlowEnd, LaterEnd]


def test_a_slow_check_spends_the_budget_the_rest_is_noted_and_the_report_still_comes(monkeypatch):
    monkeypatch.setattr(ending, "END_BUDGET_S", 0.05)
    log: list[str] = []
    observer = Observer(checks=_checks(log, slow_s=0.2))
    torch.optim.SGD([torch.zeros(1, requires_grad=True)])  # (torch's lazy imports: seconds on a busy machine)
    start = time.perf_counter()
    _train(observer)
    assert log == ["slow", "costly left=False"]  # the cheap check after the budget is left out
    report = observer.report()
    facts = report.facts["end_analysis"]
    assert facts["severity"] == "info" and facts["budget_s"] == pytest.approx(0.05, abs=0.01)
    assert facts["skipped"] == ["LaterEnd: the end-of-run budget was spent", "CostlyEnd: its probes did not fit"]
    assert facts["slowest"] == "SlowEnd" and "LaterEnd" in facts["note"]
    assert not report.findings and not report.internal_errors  # a note, never a finding
    assert time.perf_counter() - start < 5.0


def test_within_the_budget_every_check_runs_cheap_ones_first(monkeypatch):
    log: list[str] = []
    observer = Observer(checks=_checks(log, slow_s=0.0))
    _train(observer)
    assert log == ["slow", "later", "costly left=True"]
    facts = observer.report().facts["end_analysis"]
    assert "skipped" not in facts and facts["spent_s"] <= facts["budget_s"]


def test_the_budget_grows_with_the_run():
    assert ending.end_budget(0.5) == ending.END_BUDGET_S
    assert ending.end_budget(100.0) == pytest.approx(100.0 * ending.END_BUDGET_SHARE)


def test_probes_fit_their_sample_to_the_time_left():
    x, y = np.random.default_rng(0).standard_normal((1000, 100)), np.arange(1000) % 3
    full = probe_seconds(1000, 100)
    roomy = RunEnd(step=1, reason="finished", deadline=time.perf_counter() + 100.0)
    assert affordable(x, y, roomy, 300, "P")[0] is x and not roomy.skipped
    half = RunEnd(step=1, reason="finished", deadline=time.perf_counter() + full / 2)
    xs, ys = affordable(x, y, half, 300, "P")
    assert 300 <= len(xs) < 1000 and len(xs) == len(ys) and "of 1000" in half.skipped[0]
    assert xs[0] is not None and (xs[-1] == x[-1]).all()  # spread over the sample, not its start
    spent = RunEnd(step=1, reason="finished", deadline=time.perf_counter() - 1.0)
    assert affordable(x, y, spent, 300, "P") is None and "did not fit" in spent.skipped[0]


def test_an_ample_budget_keeps_every_check_whatever_the_load(monkeypatch):
    """``nndoctor fix`` compares its runs finding by finding: inside ample_end_budget a check that
    a normal run would leave out (a slow machine) still runs, and the budget is back afterwards."""
    monkeypatch.setattr(ending, "END_BUDGET_S", 0.05)
    log: list[str] = []
    with ending.ample_end_budget(5.0):
        assert ending.end_budget(0.5) == 5.0
        observer = Observer(checks=_checks(log, slow_s=0.2))
        _train(observer)
    assert log == ["slow", "later", "costly left=True"]
    assert "skipped" not in observer.report().facts["end_analysis"]
    assert ending.end_budget(0.5) == 0.05
