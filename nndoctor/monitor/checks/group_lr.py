"""grad-flow: a parameter group whose learning rate stays 0 while the other groups train.

Per-group learning rates (a smaller lr for the backbone, a larger one for the head) are built by
hand, and one slip gives a group lr 0: ``{"params": head, "lr": base_lr * head_mult}`` with
``head_mult = 0``, a multiplier meant for another group, an integer division, a config value left
at 0. The group's parameters get gradients, ``step()`` runs, and they never move; nothing crashes
and the rest of the model still trains, so the loss only ends worse. (When every group has lr 0,
``grad-flow.params-not-updated`` says so from the unchanged weights.)

Detection, on sampled optimizer steps (pre-step hook: cheap reads of ``param_groups``): a group
whose lr is exactly 0 while another group of the same optimizer has lr > 0 and whose parameters
hold a gradient. Judged at the end of the run: the group's lr was 0 at every examined step, at
least :data:`MIN_STEPS` of them, and still is (read again if the optimizer is alive). A warm-up from 0 or a head frozen for the first epochs and then
given an lr shows a positive lr later and stays quiet; a schedule that ends at 0 had a positive
lr before.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass, field
from typing import Any, Iterable

import torch

from nndoctor.checks import Check, register
from nndoctor.findings import Finding
from nndoctor.monitor.checks._layers import fmt
from nndoctor.monitor.events import RunEnd, StepEvent

__all__ = ["ParamGroupLrZero"]

#: examined steps with the group's lr at 0 (and no other value) needed for a warning
MIN_STEPS = 5
_MAX_NAMES = 4


@dataclass
class _Group:
    optimizer: str
    index: int
    groups: int
    params: list[str]
    values: int
    zero_steps: list[int] = field(default_factory=list)
    other_lrs: list[float] = field(default_factory=list)
    moved: bool = False  # a positive lr was seen: a schedule or an unfreeze, not a slip
    ref: Any = None  # weak reference to the optimizer (its lr is read again at the end, if still alive)


@register
class ParamGroupLrZero(Check):
    """A param group with lr 0 at every examined step while another group of its optimizer trains."""

    code = "grad-flow.param-group-lr-zero"
    needs = ("step", "end")
    step_phases = frozenset({"pre"})
    sampled_only = frozenset({"step"})

    def __init__(self, state: Any) -> None:
        super().__init__(state)
        self._groups: dict[tuple[int, int], _Group] = {}

    def check(self, event: StepEvent | RunEnd) -> Iterable[Finding]:
        if isinstance(event, RunEnd):
            return self._judge() if event.reason != "crash" else ()
        groups = event.optimizer.param_groups
        if len(groups) < 2:
            return ()
        lrs = [_lr(g) for g in groups]
        for gi, (group, lr) in enumerate(zip(groups, lrs)):
            if lr is None:
                continue
            key = (id(event.optimizer), gi)
            rec = self._groups.get(key)
            if lr != 0.0:
                if rec is not None:
                    rec.moved = True
                continue
            others = [x for j, x in enumerate(lrs) if j != gi and x is not None and x > 0]
            params = [p for p in group.get("params", ()) if isinstance(p, torch.Tensor)]
            if not others or not any(p.requires_grad and p.grad is not None for p in params):
                continue
            if rec is None:
                rec = self._groups[key] = _Group(
                    optimizer=event.optimizer_name, index=gi, groups=len(groups),
                    params=[self.state.param_name(p) for p in params[:_MAX_NAMES]],
                    values=sum(p.numel() for p in params), ref=weakref.ref(event.optimizer))
            if not rec.moved:
                rec.zero_steps.append(event.step)
                rec.other_lrs = others
        return ()

    def _judge(self) -> list[Finding]:
        out = []
        for rec in self._groups.values():
            opt = rec.ref() if rec.ref is not None else None
            if opt is not None and rec.index < len(opt.param_groups) and (_lr(opt.param_groups[rec.index]) or 0.0) > 0:
                rec.moved = True  # given an lr after the last examined step
            if rec.moved or len(rec.zero_steps) < MIN_STEPS:
                continue
            where = f"{rec.optimizer}.param_groups[{rec.index}]"
            names = ", ".join(rec.params) + (" ..." if rec.values and len(rec.params) >= _MAX_NAMES else "")
            others = ", ".join(fmt(x) for x in sorted(set(rec.other_lrs))[:3])
            ev = {"optimizer": rec.optimizer, "group": rec.index, "groups": rec.groups, "where": where,
                  "params": names, "values": rec.values, "steps_checked": len(rec.zero_steps),
                  "other_lrs": sorted(set(rec.other_lrs))[:3]}
            out.append(self.finding(
                f"{where} ({names}; {rec.values} values) has lr 0 at every one of the {len(rec.zero_steps)} "
                f"examined steps while the other groups of {rec.optimizer} train at lr {others}: these "
                f"parameters get gradients but {rec.optimizer}.step() never moves them (a per-group lr "
                f"computed as 0)", ev, location=where, step=rec.zero_steps[0]))
        return out


def _lr(group: dict[str, Any]) -> float | None:
    lr = group.get("lr")
    try:
        return float(lr) if lr is not None else None  # (a 0-d tensor lr reads the same)
    except (TypeError, ValueError, RuntimeError):
        return None
