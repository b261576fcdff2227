"""lr: ``CosineAnnealingLR`` stepped far past ``T_max``, so its rate cycles instead of annealing.

``CosineAnnealingLR(opt, T_max=epochs)`` stepped once per batch reaches its minimum after ``T_max``
batches and then, since the closed form is a cosine, climbs back to the base rate over the next
``T_max`` and so on: the run trains at a rate that swings between the base and ``eta_min`` every
``2 T_max`` steps and ends wherever the cycle happens to be, instead of annealing once to a small
rate. (Restarts meant on purpose use ``CosineAnnealingWarmRestarts``, which jumps back up; a
schedule stepped per batch that collapses to ~0 is ``lr.schedule-collapses``.)

Detection: the first optimizer's scheduler is looked up while the run goes on (at loss-curve
reads, a few times at most); at the end of the run, a ``CosineAnnealingLR`` (chained or not) that
was stepped at least ``2 T_max`` times, i.e. went down to ``eta_min`` and all the way back up at
least once, while the lr history confirms it: after falling to within 10% of ``eta_min`` the rate
rose again to at least half of the base rate.
"""

from __future__ import annotations

from typing import Any, Iterable

from nndoctor.checks import Check, register
from nndoctor.findings import Finding
from nndoctor.monitor.checks._layers import fmt
from nndoctor.monitor.checks.schedule import SchedulerLookup
from nndoctor.monitor.events import CurveDue, RunEnd

__all__ = ["CosineWrapsAround"]

#: scheduler look-ups (each scans the referrers of the optimizer)
MAX_LOOKUPS = 3
#: the lr must come back to at least this share of (base - eta_min) above eta_min after its minimum
MIN_COMEBACK = 0.5


@register
class CosineWrapsAround(Check):
    """A cosine annealing schedule stepped through whole periods: the rate goes down and back up."""

    code = "lr.cosine-schedule-wraps-around"
    needs = ("curve", "end")

    def __init__(self, state: Any) -> None:
        super().__init__(state)
        self._sched = SchedulerLookup(MAX_LOOKUPS)
        self._seen: dict[str, Any] | None = None

    def check(self, event: CurveDue | RunEnd) -> Iterable[Finding]:
        self._read()
        if isinstance(event, RunEnd) and event.reason != "crash":
            return self._judge()
        return ()

    def _read(self) -> None:
        opts = self.state.live_optimizers()
        if not opts:
            return
        info, opt = opts[0]
        sched = self._sched(opt)
        if sched is None or type(sched).__name__ != "CosineAnnealingLR":
            return
        t_max, calls = getattr(sched, "T_max", None), getattr(sched, "last_epoch", None)
        base = (getattr(sched, "base_lrs", None) or [None])[0]
        if isinstance(t_max, (int, float)) and t_max > 0 and isinstance(calls, int) and isinstance(base, (int, float)):
            self._seen = {"optimizer": info.name, "scheduler": type(sched).__name__, "T_max": t_max,
                          "scheduler_steps": calls, "base_lr": float(base),
                          "eta_min": float(getattr(sched, "eta_min", 0.0) or 0.0)}

    def _judge(self) -> list[Finding]:
        seen = self._seen
        if seen is None or seen["scheduler_steps"] < 2 * seen["T_max"]:
            return []
        _, lrs = self.state.lrs.series()
        base, low = seen["base_lr"], seen["eta_min"]
        span = base - low
        if len(lrs) < 4 or span <= 0:
            return []
        i_min = min(range(len(lrs)), key=lambda i: lrs[i])
        bottomed = lrs[i_min] <= low + 0.1 * span
        after = max(lrs[i_min:])
        if not (bottomed and after >= low + MIN_COMEBACK * span):
            return []
        periods = seen["scheduler_steps"] / (2 * seen["T_max"])
        ev = {**seen, "periods": round(periods, 2), "lr_min": lrs[i_min], "lr_after_min": after,
              "lr_final": lrs[-1], "steps": self.state.step - 1}
        per_batch = seen["scheduler_steps"] >= 0.5 * max(1, self.state.step - 1)
        how = " (stepped once per batch while T_max counts epochs?)" if per_batch else ""
        return [self.finding(
            f"{seen['scheduler']}(T_max={seen['T_max']}) of {seen['optimizer']} was stepped "
            f"{seen['scheduler_steps']} times{how}: past T_max a cosine climbs back up, so the rate went down to "
            f"{fmt(lrs[i_min])} and back up to {fmt(after)} ({periods:.1f} periods of {2 * seen['T_max']} steps) "
            f"instead of annealing once, and training ended at lr {fmt(lrs[-1])}",
            ev, location=seen["optimizer"])]
