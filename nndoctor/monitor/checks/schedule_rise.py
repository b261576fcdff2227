"""lr: a learning-rate schedule that keeps growing, far past the rate it was meant to reach.

The common cause is a warm-up written without its cap: ``LambdaLR(opt, lambda s: (s + 1) / W)``
instead of ``min(1, (s + 1) / W)``, or a hand-written ``g['lr'] = base * step / W`` that is never
stopped at ``base``. After the warm-up the multiplier keeps rising with the step count: at step
``20 W`` the optimizer runs at 20x its base rate and the loss eventually gets worse.

Read from the first optimizer's lr history (recorded on every change) at the end of the run, and
at the loss-curve reads during it when a torch scheduler's lr is already >= 10x its base and the
loss got worse:

* the lr still rises at the end: the last value is the run's peak and at least 1.5x the value at
  half the run (a warm-up that stops, a decay, a plateau scheduler, cosine, warm restarts: quiet);
* with a torch scheduler, the rate it was meant to reach is ``param_groups[0]['initial_lr']`` (the
  base lr every torch scheduler stores): the final lr is >= 4x that, and the loss got worse
  (its last window >= 1.3x its best window) or the lr is >= 10x the base. ``OneCycleLR`` and
  ``CyclicLR`` rise above their base on purpose (to ``max_lr``): quiet;
* without a scheduler (a hand-written schedule sets ``param_group['lr']``) there is no such
  record: the final lr must be >= 10x the lr of the first step and the loss got worse (a capped
  warm-up cut short is still rising too, but its loss goes down);
* growth by a constant factor per step (log-lr rising as fast in the second half of the rise as
  in the first) is an lr range test or a ``gamma > 1``: ``info`` only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Iterable

from nndoctor.checks import Check, register
from nndoctor.findings import Finding, Severity
from nndoctor.monitor.checks.schedule import SchedulerLookup
from nndoctor.monitor.events import CurveDue, RunEnd

__all__ = ["ScheduleKeepsRising", "loss_got_worse", "rise_is_geometric"]

STILL_RISING = 1.5  # the final lr is at least this multiple of the lr at half the run
ABOVE_BASE = 4.0  # with a torch scheduler: the final lr is this multiple of initial_lr...
FAR_ABOVE_BASE = 10.0  # ...and the loss got worse, or it is this multiple
ABOVE_FIRST = 10.0  # without a scheduler: this multiple of the first step's lr, and the loss got worse
WORSE = 1.3  # the loss's last window is this multiple of its best window
MIN_STEPS = 40  # runs shorter than this are not judged
_ON_PURPOSE = frozenset({"OneCycleLR", "CyclicLR"})
MAX_LOOKUPS = 4  # scheduler look-ups per run


def _median(values: list[float]) -> float:
    s = sorted(values)
    return s[len(s) // 2] if s else math.nan


def loss_got_worse(losses: list[float]) -> tuple[bool, float, float]:
    """(worse, best window median, last window median) over ~20 windows of the loss series."""
    n = len(losses)
    if n < 20:
        return False, math.nan, math.nan
    w = max(5, n // 20)
    windows = [losses[i:i + w] for i in range(0, n - w + 1, w)]
    meds = [_median([v if math.isfinite(v) else math.inf for v in win]) for win in windows]
    best = min(meds[:-1]) if len(meds) > 1 else meds[0]
    last = _median([v if math.isfinite(v) else math.inf for v in losses[-w:]])
    if not math.isfinite(best):
        return False, best, last
    worse = last >= WORSE * best + 1e-12 and last - best > 1e-3 * max(abs(best), 1e-6)
    return worse, best, last


def rise_is_geometric(steps: list[int], lrs: list[float]) -> bool:
    """Whether the final rise grows by a constant factor per step (log-lr linear in the step)."""
    i = len(lrs) - 1
    while i > 0 and lrs[i - 1] <= lrs[i] and lrs[i - 1] > 0:
        i -= 1
    s0, s1 = steps[i], steps[-1]
    if s1 - s0 < 4 or not lrs[i] > 0:
        return False
    mid_step = (s0 + s1) / 2
    j = min(range(i, len(steps)), key=lambda k: abs(steps[k] - mid_step))
    if not (i < j < len(steps) - 1) or steps[j] == s0 or steps[j] == s1:
        return False
    g1 = math.log(lrs[j] / lrs[i]) / (steps[j] - s0)
    g2 = math.log(lrs[-1] / lrs[j]) / (s1 - steps[j])
    return g1 > 0 and g2 >= 0.5 * g1


@dataclass
class _Setup:
    """The first optimizer's schedule, as last seen alive (a script's main() frees both before
    the end of the run is judged)."""

    optimizer: str
    base: float | None  # param_groups[0]['initial_lr'] when a torch scheduler set it
    scheduler: str
    on_purpose: bool  # OneCycleLR / CyclicLR (max_lr in the group)


@register
class ScheduleKeepsRising(Check):
    """The lr keeps rising to the end of the run, far above the rate the schedule was meant to reach."""

    code = "lr.schedule-keeps-rising"
    needs = ("curve", "end")

    def __init__(self, state: Any) -> None:
        super().__init__(state)
        self._setup: _Setup | None = None
        self._sched = SchedulerLookup(MAX_LOOKUPS)
        self._done = False

    def _read_setup(self, lookup: bool = True) -> _Setup | None:
        opts = self.state.live_optimizers()
        if len(opts) != 1:
            return self._setup if not opts else None
        info, opt = opts[0]
        group = opt.param_groups[0] if opt.param_groups else {}
        sched = self._sched(opt, lookup)
        sname = type(sched).__name__ if sched is not None else ""
        if not sname and self._setup is not None and self._setup.optimizer == info.name:
            sname = self._setup.scheduler  # (found before; the look-ups are spent)
        base = group.get("initial_lr")
        self._setup = _Setup(optimizer=info.name, scheduler=sname,
                             base=float(base) if isinstance(base, (int, float)) and sname else None,
                             on_purpose=sname in _ON_PURPOSE or "max_lr" in group or (
                                 sched is not None and hasattr(sched, "end_lr")))
        return self._setup

    def check(self, event: CurveDue | RunEnd) -> Iterable[Finding]:
        if self._done:
            return ()
        lrs_now = self.state.lrs.series()[1]
        # the scheduler look-up scans the heap (gc.get_referrers): only while the lr is at its peak
        # and above where it started, the only case the rest can report
        rising = (len(lrs_now) >= 6 and lrs_now[-1] > lrs_now[0] and lrs_now[-1] >= max(lrs_now) * (1 - 1e-9))
        setup = self._read_setup(lookup=rising)
        if setup is None or setup.on_purpose:
            return ()
        during = isinstance(event, CurveDue)
        if during and (setup.base is None or len(self.state.lrs) < 6):
            return ()  # during the run only a torch scheduler's base is evidence enough
        steps, lrs = self.state.lrs.series()
        now = max(self.state.step - 1, steps[-1] if steps else 0)
        if len(lrs) < 6 or now < MIN_STEPS or not all(math.isfinite(v) and v >= 0 for v in lrs):
            return ()
        final = lrs[-1]
        if not final > 0 or final < max(lrs) * (1 - 1e-9):
            return ()  # not at its peak: the rise stopped (warm-up then constant or decay)
        half = next((lrs[i] for i in range(len(lrs)) if steps[i] >= now / 2), final)
        if not final >= STILL_RISING * half:
            return ()
        sname, base = setup.scheduler, setup.base
        worse, best, last = loss_got_worse(self.state.losses.series()[1])
        geometric = rise_is_geometric(steps, lrs)
        ev: dict[str, Any] = {"optimizer": setup.optimizer, "lr_final": final, "lr_at_half": half,
                              "scheduler": sname or "a hand-written schedule", "steps": now,
                              "loss_best": best, "loss_last": last, "loss_got_worse": worse,
                              "geometric": geometric}
        if base is not None and base > 0:
            multiple = final / base
            ev.update(reference="initial_lr", base_lr=base, multiple=multiple)
            if multiple < (FAR_ABOVE_BASE if during else ABOVE_BASE) or (during and not worse):
                return ()  # (during the run a warm-up to a large multiple on purpose is still rising)
            strong = worse or multiple >= FAR_ABOVE_BASE
            what = f"its base lr {base:.3g} (initial_lr, the rate {sname} scales)"
        else:
            first = lrs[0]
            if not first > 0:
                return ()
            multiple = final / first
            ev.update(reference="first step", base_lr=first, multiple=multiple)
            if multiple < ABOVE_FIRST or not worse:
                return ()
            strong = True
            what = f"its first-step lr {first:.3g}"
        severity = Severity.WARNING if strong and not geometric else Severity.INFO
        tail = (f"; the loss got worse (from {best:.4g} at its best to {last:.4g})" if worse else "")
        kind = (" (growth by a constant factor per step: an lr range test or gamma > 1?)" if geometric else
                ": a warm-up without its cap (min(1, step / warmup)) keeps multiplying the rate")
        self._done = True
        self.retire()  # (its verdict is given: nothing more to hear but the end)
        return [self.finding(
            f"the learning rate of {setup.optimizer} is still rising at the end of the run: {final:.3g}, "
            f"{multiple:.0f}x {what}{tail}{kind}",
            ev, location=setup.optimizer, step=now, severity=severity)]
