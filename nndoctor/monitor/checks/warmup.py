"""lr: a warm-up that never ends: the learning rate rises for the whole run and never reaches the
rate the schedule was built for.

The common causes are a warm-up length counted in batches while the scheduler is stepped once
per epoch (``LambdaLR(opt, lambda s: min(1, s / warmup_steps))`` or
``get_linear_schedule_with_warmup(opt, warmup_steps, total_steps)`` with ``scheduler.step()`` in the
epoch loop), and a warm-up longer than the run (``LinearLR(start_factor=0.01, total_iters=...)``
over more steps than there are). Every update then uses a fraction of the intended rate, and
training is as slow as with an lr that much too low.

Read from the first optimizer's lr history (recorded on every change) at the end of the run, with
the base lr a torch scheduler stores in ``param_groups[0]['initial_lr']`` (looked up while the lr
rises; hand-written schedules have no such record and stay quiet): the lr never went down
(each recorded value at least the one before, up to float rounding), rose at least ``MIN_RISE``-fold,
ends at its peak at or below ``MAX_SHARE`` of the base, over at least ``MIN_STEPS`` optimizer steps.
A warning when the script ran to its end; ``info`` when the run was cut short (``--max-steps``,
an interrupt: the warm-up may finish later) or when the rise is geometric (an lr range test).
``OneCycleLR``/``CyclicLR`` rise on purpose: they are judged against their peak (``max_lr``), only
when the run finished and the scheduler was stepped at most once per 4 optimizer steps (per epoch,
while its length was counted in batches: the lr stays near ``max_lr / div_factor`` all run).
"""

from __future__ import annotations

import math
from typing import Any, Iterable

from nndoctor.checks import Check, register
from nndoctor.findings import Finding, Severity
from nndoctor.monitor.checks.schedule import SchedulerLookup
from nndoctor.monitor.checks.schedule_rise import rise_is_geometric
from nndoctor.monitor.events import CurveDue, RunEnd

__all__ = ["WarmupNeverEnds"]

#: the final lr is at most this share of the scheduler's base lr
MAX_SHARE = 0.5
#: the lr rose at least this many times over the run
MIN_RISE = 2.0
MIN_STEPS = 50
#: scheduler look-ups (each scans the referrers of the optimizer)
MAX_LOOKUPS = 3
_ON_PURPOSE = frozenset({"OneCycleLR", "CyclicLR"})


def _peak(sched: Any, group: dict[str, Any]) -> Any:
    """The rate a one-cycle (``max_lr`` in its param groups) or cyclic (``max_lrs``) schedule rises to."""
    if isinstance(group.get("max_lr"), (int, float)):
        return group["max_lr"]
    peaks = getattr(sched, "max_lrs", None)
    return peaks[0] if isinstance(peaks, (list, tuple)) and peaks else None


def _never_fell(lrs: list[float]) -> bool:
    return all(b >= a * (1 - 1e-9) for a, b in zip(lrs, lrs[1:]))


@register
class WarmupNeverEnds(Check):
    """The lr rises over the whole run and ends far below the scheduler's base lr."""

    code = "lr.warmup-never-ends"
    needs = ("curve", "end")

    def __init__(self, state: Any) -> None:
        super().__init__(state)
        self._sched = SchedulerLookup(MAX_LOOKUPS)
        self._setup: dict[str, Any] | None = None

    def check(self, event: CurveDue | RunEnd) -> Iterable[Finding]:
        steps, lrs = self.state.lrs.series()
        first = next((v for v in lrs if v > 0), 0.0)  # (a warm-up from s / warmup starts at 0)
        rising = len(lrs) >= 3 and lrs[-1] > first > 0 and lrs[0] >= 0 and _never_fell(lrs)
        if rising:
            self._read_setup()
        if isinstance(event, RunEnd) and event.reason != "crash" and rising:
            return self._judge(event, steps, lrs, first)
        return ()

    def _read_setup(self) -> None:
        opts = self.state.live_optimizers()
        if len(opts) != 1:
            return
        info, opt = opts[0]
        sched = self._sched(opt)
        if sched is None:
            return
        group = opt.param_groups[0] if opt.param_groups else {}
        name = type(sched).__name__
        cyclic = name in _ON_PURPOSE or "max_lr" in group
        base = _peak(sched, group) if cyclic else group.get("initial_lr")
        if not isinstance(base, (int, float)) or not base > 0:
            return
        self._setup = {"optimizer": info.name, "scheduler": name, "base": float(base), "cyclic": cyclic,
                       "scheduler_steps": getattr(sched, "last_epoch", None)}

    def _judge(self, event: RunEnd, steps: list[int], lrs: list[float], first: float) -> list[Finding]:
        setup = self._setup
        now = max(self.state.step - 1, steps[-1])
        if setup is None or now < MIN_STEPS:
            return []
        final, base = lrs[-1], setup["base"]
        calls = setup["scheduler_steps"]
        # a one-cycle/cyclic schedule rises on purpose, to its peak: still rising at the end, far below
        # the peak, is the fault only when it was stepped far less often than the optimizer (per epoch)
        rarely = isinstance(calls, int) and 0 <= calls <= now / 4
        if setup["cyclic"] and (not rarely or event.reason != "finished"):
            return []
        if not (math.isfinite(final) and final <= MAX_SHARE * base
                and (final >= MIN_RISE * first or setup["cyclic"])):
            return []
        share = final / base
        geometric = rise_is_geometric(steps, lrs) and not setup["cyclic"]
        cut = event.reason != "finished"
        ev = {"optimizer": setup["optimizer"], "scheduler": setup["scheduler"], "base_lr": base,
              "lr_first": first, "lr_final": final, "share_of_base": round(share, 4), "steps": now,
              "scheduler_steps": calls, "run_end": event.reason, "geometric": geometric}
        per_epoch = (f"; {setup['scheduler']} was stepped only {calls} times in {now} optimizer steps (once "
                     f"per epoch? a warm-up counted in batches then lasts that many epochs)"
                     if isinstance(calls, int) and 0 <= calls <= now / 4 else "")
        why = (" (the run was cut short: the warm-up may end later)" if cut else
               " (growth by a constant factor per step: an lr range test?)" if geometric else "")
        return [self.finding(
            f"the learning rate of {setup['optimizer']} rose from {first:.3g} to {final:.3g} over all {now} "
            f"steps and never reached the base lr {base:.3g} that {setup['scheduler']} warms up to: the "
            f"whole run trained at {share:.0%} of it or less, as with an lr that much too low{per_epoch}{why}",
            ev, location=setup["optimizer"], step=now,
            severity=Severity.INFO if cut or geometric else None)]
