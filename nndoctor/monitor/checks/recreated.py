"""optimizer: an optimizer built anew over the same parameters again and again during training.

The record is :mod:`nndoctor.monitor.births` (every optimizer at its first step, grouped by the
parameter tensors it holds, by identity). Judged at the end of the run: a group of ``MIN_COUNT``
or more optimizers is reported with how many there were and every how many steps one was built.
A warning when what is thrown away matters (per-parameter state: Adam's moments, SGD momentum, in
optimizers that live a few times their ~10-step memory at most; or an lr scheduler attached to an
earlier one), info for stateless plain SGD without a scheduler and for long-lived optimizers (a new
one per stage: pruning rounds, unfreezing).
Healthy lookalikes stay quiet by construction: two optimizers over one set (a second fine-tuning
phase), optimizers over disjoint sets (GAN generator / discriminator), a model and its optimizer
rebuilt per fold or trial (new tensors: a new group), one LBFGS.
"""

from __future__ import annotations

import statistics
from typing import Any, Iterable

from nndoctor.checks import Check, register
from nndoctor.findings import Finding, Severity
from nndoctor.monitor.births import BIRTHS_KEY, OptimizerGroup
from nndoctor.monitor.events import RunEnd

__all__ = ["MIN_COUNT", "OptimizerRecreated"]

MIN_COUNT = 3  # optimizers over the same parameter tensors (2: a deliberate second phase)
#: momentum and Adam's first moment (beta 0.9) remember ~10 steps: optimizers that each live more than
#: this many steps lose little when rebuilt (stages on purpose: pruning rounds, unfreezing, curricula)
LONG_LIVED = 50


def _steps_text(steps: list[int]) -> str:
    shown = ", ".join(str(s) for s in steps[:5])
    return shown + (", ..." if len(steps) > 5 else "")


@register
class OptimizerRecreated(Check):
    """Three or more optimizers built over the same parameter tensors: the optimizer is re-created in the loop."""

    code = "optimizer.recreated-in-loop"
    needs = ("end",)

    def check(self, event: RunEnd) -> Iterable[Finding]:
        rec = self.state.extra.get(BIRTHS_KEY)
        if rec is None:
            return ()
        out = []
        for group in rec.groups:
            if group.count >= MIN_COUNT:
                out.append(self._report(group))
        return out

    def _owner(self, group: OptimizerGroup) -> str:
        for ref in group.refs:
            p = ref()
            if p is not None:
                info = self.state.model_of_param(id(p))
                if info is not None:
                    return info.name
        return ""

    def _report(self, group: OptimizerGroup) -> Finding:
        steps = group.steps
        gaps = [b - a for a, b in zip(steps, steps[1:])]
        every = int(statistics.median(gaps)) if gaps else 0
        cls = group.classes[-1]
        name = group.names[-1]
        stateful = any(group.stateful)
        scheduler_lost = group.scheduled[0] and not all(group.scheduled[1:])
        owner = self._owner(group)
        lrs = sorted({lr for lr in group.lrs if lr is not None})
        lost = []
        if stateful:
            lost.append("moment estimates" if cls != "SGD" else "momentum buffers")
        if scheduler_lost:
            lost.append("the lr scheduler attached to the first one")
        what = " and ".join(lost) if lost else "nothing yet (plain SGD keeps no state)"
        ev: dict[str, Any] = {
            "optimizer": name, "optimizer_class": cls, "count": group.count, "every": max(every, 1),
            "created_at_steps": steps[:10], "parameter_tensors": len(group.ids), "stateful": stateful,
            "scheduler_lost": scheduler_lost, "lrs": lrs[:5]}
        if owner:
            ev["model"] = owner
        over = f"the {len(group.ids)} parameter tensors of {owner}" if owner else f"the same {len(group.ids)} parameter tensors"
        per = "every step" if every <= 1 else f"one every ~{every} steps"
        msg = (f"{group.count} {cls} optimizers were built over {over}, {per} (at steps {_steps_text(steps)}): "
               f"the optimizer is re-created inside the training loop, so each one starts from scratch, "
               f"without the {what}" if lost else
               f"{group.count} {cls} optimizers were built over {over}, {per} (at steps {_steps_text(steps)}): "
               f"the optimizer is re-created inside the training loop; {what}, but momentum or a scheduler "
               f"added later would be reset every time")
        long_lived = every > LONG_LIVED and not scheduler_lost
        if lost and long_lived:
            msg += (f"; each lived ~{every} steps, several times the ~10 steps that state remembers, so little "
                    f"is lost (stages built on purpose, e.g. pruning rounds or unfreezing, are fine)")
        severity = Severity.WARNING if lost and not long_lived else Severity.INFO
        return self.finding(msg, ev, location=name, severity=severity, step=steps[MIN_COUNT - 1])
