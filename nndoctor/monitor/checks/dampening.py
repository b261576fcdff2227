"""optimizer: SGD dampening that cancels the momentum it comes with.

``torch.optim.SGD(momentum=m, dampening=d)`` adds ``(1 - d) * grad`` to the momentum buffer: the
steady-state step is ``lr * (1 - d) / (1 - m)`` times the gradient instead of ``lr / (1 - m)``.
``dampening=0.9`` beside ``momentum=0.9`` (a dampening written for a momentum) gives back plain SGD
at ``lr``: the 10x gain momentum was meant to add is gone, and a learning rate tuned for momentum
is 10x too small. A dampening equal to the momentum is also a known way to make the buffer an
average of the gradients (then the lr is chosen for that), so the setting alone is only ``info``;
it is a warning when the run shows what it costs: the training loss hardly moved (it ended above
``1 - MIN_PROGRESS`` of where it started, over at least ``MIN_LOSSES`` losses).
"""

from __future__ import annotations

from typing import Any, Iterable

from nndoctor.checks import Check, register
from nndoctor.findings import Finding, Severity
from nndoctor.monitor.checks._layers import fmt
from nndoctor.monitor.curves import loss_progress
from nndoctor.monitor.events import RunEnd, StepEvent

__all__ = ["DampenedMomentum"]

#: a dampening at or above this lets at most half of each gradient into the momentum buffer
DAMPENING = 0.5
#: the training loss must have fallen by less than this share of its start for a warning
MIN_PROGRESS = 0.15
MIN_LOSSES = 30


@register
class DampenedMomentum(Check):
    """SGD with momentum and a dampening >= 0.5: the momentum's gain cancelled."""

    code = "optimizer.dampening-cancels-momentum"
    needs = ("step", "end")
    step_phases = frozenset({"pre"})
    sampled_only = frozenset({"step"})

    def __init__(self, state: Any) -> None:
        super().__init__(state)
        self._seen: set[int] = set()
        self._found: list[dict[str, Any]] = []

    def check(self, event: StepEvent | RunEnd) -> Iterable[Finding]:
        if isinstance(event, RunEnd):
            return self._judge(event) if event.reason != "crash" else ()
        if event.phase != "pre" or id(event.optimizer) in self._seen:
            return ()
        self._seen.add(id(event.optimizer))
        groups = event.optimizer.param_groups
        for gi, group in enumerate(groups):
            try:
                m, d, lr = float(group.get("momentum", 0.0)), float(group.get("dampening", 0.0)), float(group["lr"])
            except (TypeError, ValueError, KeyError):
                continue
            if 0 < m < 1 and DAMPENING <= d < 1:
                where = event.optimizer_name if len(groups) == 1 else f"{event.optimizer_name}.param_groups[{gi}]"
                self._found.append({"optimizer": f"{event.optimizer_name} ({type(event.optimizer).__name__})",
                                    "where": where, "momentum": m, "dampening": d, "lr": lr,
                                    "effective_lr": float(f"{lr * (1 - d) / (1 - m):.3g}"),
                                    "intended_lr": float(f"{lr / (1 - m):.3g}"),
                                    "step": event.step})
        return ()

    def _judge(self, event: RunEnd) -> list[Finding]:
        if not self._found:
            return []
        curve, progress = loss_progress(self.state, MIN_LOSSES)
        out = []
        for f in self._found:
            stalled = progress is not None and progress < MIN_PROGRESS
            ev = {**f, "losses": curve.n, "start_loss": curve.start, "end_loss": curve.end,
                  "progress": progress, "stalled": stalled}
            cost = (f"; the training loss fell only {progress:.0%} ({fmt(curve.start)} -> {fmt(curve.end)}) "
                    f"over {curve.n} steps" if stalled and progress is not None else "")
            out.append(self.finding(
                f"{f['where']} runs SGD with momentum={fmt(f['momentum'])} and dampening={fmt(f['dampening'])}: "
                f"only {1 - f['dampening']:.0%} of each gradient enters the momentum buffer, so the steps are "
                f"lr x {(1 - f['dampening']) / (1 - f['momentum']):.3g} = {fmt(f['effective_lr'])} per unit of "
                f"gradient instead of the {fmt(f['intended_lr'])} momentum {fmt(f['momentum'])} gives"
                f"{cost}", ev, location=f["where"], step=f["step"],
                severity=None if stalled else Severity.INFO))
        return out
