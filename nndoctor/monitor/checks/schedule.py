"""lr: a learning-rate schedule that drives the rate to ~0 long before training ends.

The common cause is an epoch-based scheduler (``StepLR(step_size=10)``, ``MultiStepLR``,
``CosineAnnealingLR(T_max=epochs)``, ``ExponentialLR``) whose ``step()`` is called once per batch:
its epochs become batches and the rate collapses within the first epoch or so; a manual
``lr *= 0.9`` per batch does the same. Read from the first optimizer's lr history (recorded on
every change): the rate fell to 1% of its peak (after any warm-up) at step ``s`` and stayed there
while training went on to step ``2 s`` or later. A schedule meant per batch (OneCycleLR, cosine
over all steps, warm-up and decay) reaches 1% of its peak only near the end of the run, and warm
restarts come back up: both stay quiet.

A schedule that decays too fast without reaching 1% that early (a Keras inverse-time decay applied
per batch, an ``ExponentialLR``/``StepLR`` gamma or ``MultiStepLR`` milestones that kill the rate in
the first epochs) is read at the end of a finished run from the loss: the rate stayed below 10% of its
peak from 60% of the run or earlier (cosine and one-cycle get there at ~80%, warm restarts come back
up), and the training loss read against effective steps (cumulative lr / peak: the steps the run
was worth at its peak rate) was cut in its descent (:class:`._budget.Descent.cut`: still falling as
steeply as it began, less than one time constant of a saturation fit covered). A schedule that ends
at ~0 on purpose (cosine, one-cycle, a step decay after the loss flattened) leaves a curve that has
bent by then: quiet.
"""

from __future__ import annotations

import gc
import weakref
from typing import Any, Iterable

import numpy as np
import torch

from nndoctor.checks import Check, register
from nndoctor.findings import Finding
from nndoctor.monitor.checks._budget import effective_steps, read_descent
from nndoctor.monitor.checks.lr import _fmt_lr
from nndoctor.monitor.checks.stopped import DECAYED, TAU_LN
from nndoctor.monitor.curves import per_step
from nndoctor.monitor.events import CurveDue, RunEnd, StepEvent

__all__ = ["ScheduleCollapses", "SchedulerLookup"]

COLLAPSED = 1e-2  # the rate at or below this fraction of its peak counts as ~0
MIN_STEPS_AFTER = 20  # training went on at least this many steps with the collapsed rate


def _scheduler_of(opt: torch.optim.Optimizer, plateau: bool = False) -> Any:
    """The LR scheduler attached to ``opt``, if one holds it. The look-up scans the objects that refer
    to the optimizer (a heap scan: tens of ms in a large process), so it is made only when a scheduler
    is there to find: every LRScheduler but ReduceLROnPlateau sets ``initial_lr`` in the param groups
    it is built on; ``plateau=True`` looks for a ReduceLROnPlateau too (once, when reporting)."""
    base = getattr(torch.optim.lr_scheduler, "LRScheduler", None) or getattr(
        torch.optim.lr_scheduler, "_LRScheduler", None)
    if base is None or not (plateau or any("initial_lr" in g for g in opt.param_groups)):
        return None
    for ref in gc.get_referrers(opt):
        if isinstance(ref, base) and getattr(ref, "optimizer", None) is opt:
            return ref
        if isinstance(ref, dict) and ref.get("optimizer") is opt:
            # a scheduler whose attribute dict was materialised (read through ``vars()`` / ``__dict__``
            # by anyone) is referred to through that dict, not directly: its owner holds the dict
            for owner in gc.get_referrers(ref):
                if isinstance(owner, base) and getattr(owner, "__dict__", None) is ref:
                    return owner
    return None


class SchedulerLookup:
    """An optimizer's scheduler for a check that reads it as the run goes: found by at most ``limit``
    look-ups, each a heap scan made only when a scheduler is there to find, then kept by weak
    reference while it drives the same optimizer."""

    def __init__(self, limit: int = 3) -> None:
        self.limit = limit
        self.scans = 0
        self._ref: weakref.ReferenceType[Any] | None = None

    def __call__(self, opt: torch.optim.Optimizer, lookup: bool = True) -> Any:
        sched = self._ref() if self._ref is not None else None
        if sched is not None and getattr(sched, "optimizer", None) is opt:
            return sched
        if not lookup or self.scans >= self.limit or not any("initial_lr" in g for g in opt.param_groups):
            return None
        self.scans += 1
        sched = _scheduler_of(opt)
        self._ref = weakref.ref(sched) if sched is not None else None
        return sched


def _horizon(sched: Any) -> str:
    """The schedule's own length in its steps (step_size / T_max / milestones), for the message."""
    for attr in ("step_size", "T_max", "T_0", "total_iters"):
        value = getattr(sched, attr, None)
        if isinstance(value, int):
            return f"{attr}={value}"
    milestones = getattr(sched, "milestones", None)
    if milestones:
        return f"milestones={sorted(milestones)}"
    gamma = getattr(sched, "gamma", None)
    return f"gamma={gamma}" if isinstance(gamma, float) else ""


def _slower(sched: Any, factor: float) -> str:
    """The schedule's own setting made ``factor`` times slower, for the message."""
    gamma = getattr(sched, "gamma", None)
    milestones = getattr(sched, "milestones", None)
    if milestones:
        return f"milestones {sorted(milestones)} -> {[round(m * factor) for m in sorted(milestones)]}"
    if isinstance(gamma, float) and 0 < gamma < 1:
        return f"gamma={gamma:g} -> {gamma ** (1 / factor):.3g}"
    return f"a decay {factor:.0f}x slower"


EARLY = 0.6  # the rate stayed below 10% of its peak from this share of the run on, or earlier


@register
class ScheduleCollapses(Check):
    """The lr fell to ~0 (1% of its peak) and training went on for as long again."""

    code = "lr.schedule-collapses"
    needs = ("step", "curve", "end")
    step_phases = frozenset({"post"})
    sampled_only = frozenset({"step"})

    def __init__(self, state: Any) -> None:
        super().__init__(state)
        self._done = False

    def check(self, event: StepEvent | CurveDue | RunEnd) -> Iterable[Finding]:
        if self._done:
            return ()
        if isinstance(event, StepEvent) and not event.sampled:
            return ()
        opts = self.state.live_optimizers()
        if len(opts) == 1:
            info, opt = opts[0]
        elif not opts and isinstance(event, RunEnd) and len(self.state.optimizers) == 1:
            # a local of the script's main() (pytorch/examples' idiom), freed when main() returned: its lr
            # history is the state's, only its scheduler can no longer be looked up
            info, opt = next(iter(self.state.optimizers.values())), None
        else:
            return ()
        steps, lrs = self.state.lrs.series()
        early = self._early_collapse(info, opt, steps, lrs)
        if early or not isinstance(event, RunEnd):
            return early
        self._done = True
        return self._decayed_while_falling(event, info, opt, steps, lrs)

    def _decayed_while_falling(self, event: RunEnd, info: Any, opt: Any, lr_steps: list[int],
                               lrs: list[float]) -> list[Finding]:
        """The rate ended ~0 while the loss, read against effective steps, was cut in its descent."""
        if event.reason != "finished" or len(self.state.optimizers) != 1 or not lrs:
            return []
        peak = max(lrs)
        if not (peak > 0 and lrs[-1] < DECAYED * peak):
            return []
        low_from = len(lrs)
        while low_from > 0 and lrs[low_from - 1] <= DECAYED * peak * (1 + 1e-9):  # (0.1 x peak in floats)
            low_from -= 1
        steps, values = per_step(*self.state.losses.series())
        if not len(steps) or lr_steps[low_from] > EARLY * int(steps[-1]):
            return []  # low only in the last part of the run: a schedule that ends with it (cosine, one-cycle)
        keep = np.isfinite(values)
        steps, values = steps[keep], values[keep]
        if len(values) < 8 or float(values.min()) <= 0:
            return []
        x = effective_steps(steps, lr_steps, lrs)
        cut = read_descent(x, values) if x is not None else None
        if cut is None or not cut.cut:
            return []
        factor = min(10.0, max(2.0, 1 + TAU_LN * (cut.tau_ratio or 0.0)))
        sched = _scheduler_of(opt, plateau=True) if opt is not None else None
        sname = type(sched).__name__ if sched is not None else ""
        now = int(steps[-1])
        ev: dict[str, Any] = {"optimizer": info.name, "peak_lr": peak, "lr_now": lrs[-1], "steps": now,
                              "effective_steps": round(cut.length, 1), "bend": round(cut.bend, 3),
                              "tau_over_run": round(cut.tau_ratio or 0.0, 3), "projected_gain": round(cut.gain, 3),
                              "start_loss": round(cut.first, 5), "final_loss": round(cut.level, 5),
                              "scheduler": sname or "the schedule", "horizon": _horizon(sched) or "its length",
                              "slower": round(factor, 1)}
        return [self.finding(
            f"the learning rate of {info.name} decayed from {_fmt_lr(peak)} to {_fmt_lr(lrs[-1])} "
            f"({100 * lrs[-1] / peak:.2g}% of its peak) while the loss was still falling: the {now} steps were "
            f"worth {cut.length:.0f} at the peak rate, and against those the loss ({cut.first:.4g} -> "
            f"{cut.level:.4g}) had not bent: {cut.describe()}. {sname or 'The schedule'} decays too fast: make "
            f"it about {factor:.0f}x slower ({_slower(sched, factor)}), or step it per epoch rather than per batch",
            ev, location=info.name, step=now)]

    def _early_collapse(self, info: Any, opt: Any, steps: list[int], lrs: list[float]) -> list[Finding]:
        """The rate fell to 1% of its peak at step s, and training went on to 2 s."""
        if len(lrs) < 3:
            return []
        peak_i = max(range(len(lrs)), key=lambda i: lrs[i])
        peak = lrs[peak_i]
        if not peak > 0:
            return []
        low = COLLAPSED * peak * (1 + 1e-9)  # (two 10x drops reach 1% up to float rounding: 0.1**3 > 1e-3)
        s_i = next((i for i in range(peak_i, len(lrs)) if lrs[i] <= low), None)
        if s_i is None or any(v > low for v in lrs[s_i:]):
            return []  # never collapsed, or came back up (warm restarts)
        s = steps[s_i]
        now = max(self.state.step - 1, steps[-1])  # the last finished step
        if now < max(2 * s, s + MIN_STEPS_AFTER):
            return []  # ~0 only near the end so far: a schedule that ends with the run
        self._done = True
        self.retire()  # (its verdict is given: nothing more to hear but the end)
        sched = _scheduler_of(opt, plateau=True) if opt is not None else None
        sname = type(sched).__name__ if sched is not None else ""
        calls = getattr(sched, "last_epoch", None) if sched is not None else None
        ev: dict[str, Any] = {"optimizer": info.name, "peak_lr": peak, "lr_now": lrs[-1],
                              "collapsed_step": s, "steps_since": now - s,
                              "scheduler": sname or "the scheduler", "horizon": _horizon(sched) or "its length"}
        if isinstance(calls, int):
            ev["scheduler_steps"] = calls
        per_batch = (f"; {sname} was stepped {calls} times in {now} optimizer steps (once per batch)"
                     if isinstance(calls, int) and calls >= 0.5 * now else "")
        return [self.finding(
            f"the learning rate of {info.name} fell from {_fmt_lr(peak)} to {_fmt_lr(lrs[-1])} (below 1% of its "
            f"peak) by step {s} and training went on {now - s} more steps with it: the model has "
            f"barely been updated since{per_batch}",
            ev, location=info.name, step=now)]
