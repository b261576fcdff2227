"""The end-of-run analysis, within a budget: what a user waits for after the last step.

The checks that want the ``end`` event get ``max(END_BUDGET_S, END_BUDGET_SHARE * the run's
elapsed time)`` in all. They run by value: the cheap ones first (in registration order),
then the costly ones (probes fitted on the observed sample) by their ``end_cost`` rank; a recorder
others depend on (``end_cost`` -1: the per-rank fingerprints) goes first and is never left out. A
cheap check that would start once the budget is spent is left out; a costly check always
gets the event (its gate is cheap), compares the estimate of its own work with
:meth:`RunEnd.time_left` and fits the work to it (a subset of the sample), or leaves it out. What
was left out is recorded, with the time spent, as an info-level note in the report's facts
(``end_analysis``): never a warning, since nothing was found wrong with the training.
"""

from __future__ import annotations

import contextlib
import time
from typing import Any, Callable, Iterable, Iterator

from nndoctor.checks import Check
from nndoctor.monitor.events import RunEnd

__all__ = ["END_BUDGET_S", "END_BUDGET_SHARE", "ample_end_budget", "end_budget", "run_end_checks"]

#: the end-of-run analysis may take the larger of this many seconds ...
END_BUDGET_S = 0.2
#: ... and this share of the run's elapsed time
END_BUDGET_SHARE = 0.05


_FLOOR = [0.0]  # raised by ample_end_budget()


def end_budget(elapsed: float) -> float:
    """Seconds the end-of-run analysis of a run that took ``elapsed`` seconds may take."""
    return max(END_BUDGET_S, _FLOOR[0], END_BUDGET_SHARE * max(elapsed, 0.0))


@contextlib.contextmanager
def ample_end_budget(seconds: float) -> Iterator[None]:
    """Runs observed inside get at least ``seconds`` for the end-of-run analysis: for runs whose
    report is compared with another's (``nndoctor fix``'s re-runs), which must not depend on how
    loaded the machine is (a probe left out under load is a finding missing from one run only)."""
    saved = _FLOOR[0]
    _FLOOR[0] = max(saved, float(seconds))
    try:
        yield
    finally:
        _FLOOR[0] = saved


def run_end_checks(checks: Iterable[Check], step: int, reason: str, elapsed: float,
                   dispatch: Callable[[RunEnd, Check], None]) -> dict[str, Any]:
    """Hand one :class:`RunEnd` to ``checks`` by value within the budget (``dispatch`` runs one
    check on it); returns the ``end_analysis`` facts."""
    start = time.perf_counter()
    budget = end_budget(elapsed)
    event = RunEnd(step=step, reason=reason, deadline=start + budget)
    ordered = sorted(checks, key=lambda check: check.end_cost)  # (stable: registration order within a rank)
    slowest = ("", 0.0)
    for check in ordered:
        began = time.perf_counter()
        if began >= event.deadline and not check.end_cost:
            event.skipped.append(f"{check.name()}: the end-of-run budget was spent")
            continue
        dispatch(event, check)
        took = time.perf_counter() - began
        if took > slowest[1]:
            slowest = (check.name(), took)
    spent = time.perf_counter() - start
    facts: dict[str, Any] = {"budget_s": round(budget, 3), "spent_s": round(spent, 3),
                             "slowest": slowest[0], "slowest_s": round(slowest[1], 3)}
    if event.skipped:
        facts["severity"] = "info"
        facts["skipped"] = list(event.skipped)
        facts["note"] = (f"the end-of-run analysis kept to its budget of {budget:.2g} s (the larger of "
                         f"{END_BUDGET_S:g} s and {END_BUDGET_SHARE:.0%} of the run) and left out: "
                         + "; ".join(event.skipped))
    return facts
