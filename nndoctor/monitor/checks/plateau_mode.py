"""lr.plateau-scheduler-wrong-mode: ``ReduceLROnPlateau`` told the wrong direction for its metric.

``ReduceLROnPlateau(optimizer, mode="max")`` stepped with a validation loss (or ``mode="min"``,
the default, with an accuracy) takes every improvement for a worse value: its ``best`` stays at
the first (worst) value, and it cuts the learning rate every ``patience + 1`` epochs however well
training goes, until the rate is ~0 and training stops early in effect.

Evidence: the ``ReduceLROnPlateau`` holding an optimizer (found among the script's variables and
their attributes at the optimizer's first two sampled steps; its mode, ``best``, factor and the optimizer's lr read on
sampled steps, the cuts counted from the lr at the first one), judged at the end of the run
against the metric nndoctor recorded
in the script's evaluation passes: the mean evaluation loss of each step, or the accuracy of each
pass (``argmax`` compared with the labels, see :mod:`.best_restore`). Reported when the
scheduler's ``best`` is the worst value of that metric (within ``SAME`` of it; an accuracy also in
percent), the metric then improved by ``IMPROVED`` of it (a loss fell by >= 20%, an accuracy rose by
>= 5 points), and the rate was cut at least ``MIN_CUTS`` times.
A scheduler given another number (a training loss, a mixed score) matches neither and stays quiet.
"""

from __future__ import annotations

import math
import weakref
from dataclasses import dataclass
from typing import Any, Iterable

from nndoctor.checks import Check, register
from nndoctor.findings import Finding
from nndoctor.monitor.checks.best_restore import ACCURACY_KEY
from nndoctor.monitor.checks.stale_copy import _user_values
from nndoctor.monitor.curves import per_step
from nndoctor.monitor.events import RunEnd, StepEvent

__all__ = ["PlateauSchedulerWrongMode"]

SAME = 0.02  # relative agreement of the scheduler's best with the metric's worst value
IMPROVED_LOSS = 0.2  # the loss fell by this share of its worst value afterwards ...
IMPROVED_ACC = 0.05  # ... or the accuracy rose by this much
MIN_CUTS = 2


def _plateau_scheduler(opt: Any, script_globals: dict[str, Any] | None) -> Any:
    """The ReduceLROnPlateau holding ``opt`` among the script's variables (its globals and the locals
    of the user's frames now running) and their attributes one level down (``trainer.scheduler``)."""
    try:
        from torch.optim.lr_scheduler import ReduceLROnPlateau
    except ImportError:  # pragma: no cover - every supported torch has it
        return None
    for _, value in _user_values(script_globals):
        candidates = [value]
        attrs = getattr(value, "__dict__", None)
        if isinstance(attrs, dict) and not isinstance(value, type):
            candidates.extend(list(attrs.values())[:64])
        for obj in candidates:
            if isinstance(obj, ReduceLROnPlateau) and getattr(obj, "optimizer", None) is opt:
                return obj
    return None


@dataclass
class _Seen:
    """A scheduler as last read on a sampled step (it may be freed by the end of the run)."""

    optimizer: str
    mode: Any
    best: Any
    factor: Any
    patience: Any
    lr: float


def _cuts(seen: _Seen, start: float | None) -> int:
    """How many times the rate was cut since ``start``: log(lr / start) / log(factor)."""
    try:
        factor = float(seen.factor)
    except (TypeError, ValueError):
        return 0
    if start is None or not (0 < factor < 1 and start > 0 and seen.lr > 0):
        return 0
    return max(0, round(math.log(seen.lr / start) / math.log(factor)))


@register
class PlateauSchedulerWrongMode(Check):
    """ReduceLROnPlateau's mode is the opposite of its metric's direction."""

    code = "lr.plateau-scheduler-wrong-mode"
    needs = ("step", "end")
    step_phases = frozenset({"pre"})
    sampled_only = frozenset({"step"})

    def __init__(self, state: Any) -> None:
        super().__init__(state)
        self._first_lr: dict[int, float] = {}  # id(optimizer) -> its lr at its first sampled step
        self._tries: dict[int, int] = {}  # id(optimizer) -> referrer scans so far
        self._scheds: dict[int, weakref.ReferenceType[Any]] = {}  # id(optimizer) -> its ReduceLROnPlateau
        self._seen: dict[int, _Seen] = {}

    def check(self, event: StepEvent | RunEnd) -> Iterable[Finding]:
        if isinstance(event, StepEvent):
            self._read(event)
            return ()
        losses = [float(v) for v in per_step(*self.state.eval_losses.series())[1]]
        accuracies = [a for _, a in self.state.extra.get(ACCURACY_KEY, ())]
        out = []
        for key, seen in self._seen.items():
            finding = self._judge(seen, self._first_lr.get(key), losses, accuracies)
            if finding is not None:
                out.append(finding)
        return out

    def _read(self, event: StepEvent) -> None:
        opt, key = event.optimizer, id(event.optimizer)
        lr = opt.param_groups[0].get("lr") if opt.param_groups else None
        if not isinstance(lr, (int, float)):
            return
        if key not in self._first_lr and len(self._first_lr) < 64:
            self._first_lr[key] = float(lr)
        ref = self._scheds.get(key)
        sched = ref() if ref is not None else None
        if sched is None and self._tries.get(key, 0) < 2 and len(self._tries) < 64:
            self._tries[key] = self._tries.get(key, 0) + 1
            sched = _plateau_scheduler(opt, self.state.script_globals)
            if sched is not None:
                self._scheds[key] = weakref.ref(sched)
        if sched is not None and getattr(sched, "optimizer", None) is opt:
            self._seen[key] = _Seen(optimizer=event.optimizer_name, mode=getattr(sched, "mode", None),
                                    best=getattr(sched, "best", None), factor=getattr(sched, "factor", None),
                                    patience=getattr(sched, "patience", None), lr=float(lr))

    def _judge(self, seen: _Seen, start: float | None, losses: list[float], accuracies: list[float]) -> Finding | None:
        best, cuts = seen.best, _cuts(seen, start)
        if not isinstance(best, (int, float)) or not math.isfinite(best) or cuts < MIN_CUTS:
            return None
        if seen.mode == "max" and len(losses) >= 3:
            worst, last = max(losses), losses[-1]
            if abs(best - worst) <= SAME * abs(worst) and last <= (1 - IMPROVED_LOSS) * worst:
                return self._finding(seen, "validation loss", worst, last, cuts)
        if seen.mode == "min" and len(accuracies) >= 3:
            worst, last = min(accuracies), accuracies[-1]
            scale = 100.0 if best > 1.5 else 1.0  # (an accuracy in percent)
            if abs(best / scale - worst) <= max(SAME * worst, 0.005) and last - worst >= IMPROVED_ACC:
                return self._finding(seen, "validation accuracy", worst, last, cuts)
        return None

    def _finding(self, seen: _Seen, metric: str, worst: float, last: float, cuts: int) -> Finding:
        mode = seen.mode
        right = "min" if mode == "max" else "max"
        msg = (f"ReduceLROnPlateau(mode='{mode}') on {seen.optimizer} is stepped with the {metric}, which "
               f"improves the other way: its best stayed at the worst value ({seen.best:.4g}) while the {metric} "
               f"went from {worst:.4g} to {last:.4g}, and it cut the learning rate {cuts} times (to {seen.lr:.2g}) "
               f"although training kept improving")
        ev = {"optimizer": seen.optimizer, "mode": mode, "right_mode": right, "metric": metric,
              "scheduler_best": round(float(seen.best), 6), "worst": round(worst, 6), "last": round(last, 6),
              "cuts": cuts, "lr": seen.lr, "patience": seen.patience}
        return self.finding(msg, ev, location=seen.optimizer)
