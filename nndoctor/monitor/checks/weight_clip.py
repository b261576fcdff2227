"""regularization: weights clipped to a small box after every step (WGAN critic clipping elsewhere).

A WGAN critic clamps every parameter to [-c, c] after each step (c = 0.01) to keep it Lipschitz; the
same two lines in an ordinary model cap what it can output: with every weight at most 0.01 a few
layers can only produce values of a few hundredths, the optimizer keeps pushing weights into the
wall and the loss stops far above what the model could reach.

Evidence, on sampled steps before the optimizer's step (so after the previous step's clamp): the
weight tensors (``dim >= 2``) the optimizer trains, each with a largest magnitude ``c > 0`` that at
least ``AT_BOUND`` of its entries, and at least ``MIN_TIED`` of them, share exactly, all with the same ``c`` (the box), on ``STREAK``
sampled steps. At the end: a warning when the training loss hardly fell (< ``MIN_PROGRESS`` of its
start over >= ``MIN_LOSSES`` losses) and the run has a single optimizer; info otherwise (a WGAN's
critic, or a clipped model that still trains).
"""

from __future__ import annotations

from typing import Any, Iterable

import torch

from nndoctor.checks import Check, register
from nndoctor.findings import Finding, Severity
from nndoctor.monitor.checks._layers import fmt, host_floats
from nndoctor.monitor.checks.dampening import MIN_LOSSES, MIN_PROGRESS
from nndoctor.monitor.curves import loss_progress
from nndoctor.monitor.events import RunEnd, StepEvent
from nndoctor.monitor.tensors import local

__all__ = ["ClippedWeights"]

AT_BOUND = 0.25  # share of a tensor's entries sitting exactly at its largest magnitude
STREAK = 3
MIN_TIED = 2  # entries of a tensor exactly at its largest magnitude, at least
MAX_TENSORS = 64


@register
class ClippedWeights(Check):
    """Every trained weight held in the same box [-c, c], step after step."""

    code = "regularization.weights-clipped"
    needs = ("step", "end")
    step_phases = frozenset({"pre"})
    sampled_only = frozenset({"step"})

    def __init__(self, state: Any) -> None:
        super().__init__(state)
        self._streak: dict[int, tuple[int, float]] = {}  # optimizer -> (sampled steps in a row, bound)
        self._seen: dict[int, dict[str, Any]] = {}
        self._optimizers: set[int] = set()

    def check(self, event: StepEvent | RunEnd) -> Iterable[Finding]:
        if isinstance(event, RunEnd):
            return self._judge() if event.reason != "crash" else ()
        self._optimizers.add(id(event.optimizer))
        if event.phase != "pre" or not event.sampled or id(event.optimizer) in self._seen:
            return ()
        weights = [p for g in event.optimizer.param_groups for p in g["params"]
                   if isinstance(p, torch.Tensor) and p.dim() >= 2 and p.numel() >= 4 and p.is_floating_point()]
        if not weights or event.step <= 1:
            return ()
        shards = [w for p in weights[:MAX_TENSORS] if (w := local(p).detach()).numel()]  # a DTensor's own shard
        if not shards:
            return ()
        with torch.no_grad():
            # the largest magnitude from one min/max pass (max(-min, max): no |w| copy of each weight)
            tops = [torch.maximum(-lo, hi) for lo, hi in (torch.aminmax(w) for w in shards)]
            tops_f = host_floats(tops)
            bound = tops_f[0]
            shares_f: list[float] = []
            ties_f: list[float] = []
            if bound > 0 and all(t == bound for t in tops_f):  # (the shares only matter then: one read less)
                ties_f = host_floats([(w.abs() == t).float().sum() for w, t in zip(shards, tops)])
                shares_f = [n / w.numel() for n, w in zip(ties_f, shards)]
        # a largest magnitude always exists; several entries tied exactly at it take a clamp (a 2x2
        # matrix has its one largest entry at 25% of the entries: no evidence of a box)
        boxed = bool(shares_f) and all(s >= AT_BOUND and n >= MIN_TIED for s, n in zip(shares_f, ties_f))
        count, _ = self._streak.get(id(event.optimizer), (0, 0.0))
        count = count + 1 if boxed else 0
        self._streak[id(event.optimizer)] = (count, bound)
        if count >= STREAK:
            self._seen[id(event.optimizer)] = {
                "optimizer": event.optimizer_name, "bound": bound, "tensors": len(shards),
                "share_at_bound": min(shares_f), "step": event.step,
                "params": [self.state.param_name(p) for p in weights[:6]]}
        return ()

    def _judge(self) -> list[Finding]:
        if not self._seen:
            return []
        curve, progress = loss_progress(self.state, MIN_LOSSES)
        stalled = progress is not None and progress < MIN_PROGRESS and len(self._optimizers) == 1
        out = []
        for f in self._seen.values():
            ev = {**f, "losses": curve.n, "start_loss": curve.start, "end_loss": curve.end, "progress": progress,
                  "stalled": stalled, "optimizers": len(self._optimizers)}
            cost = (f"; the training loss fell only {progress:.0%} ({fmt(curve.start)} -> {fmt(curve.end)}) over "
                    f"{curve.n} steps" if stalled and progress is not None else "")
            out.append(self.finding(
                f"every weight trained by {f['optimizer']} is held in [-{fmt(f['bound'])}, {fmt(f['bound'])}] "
                f"(all {f['tensors']} weight tensors share that largest magnitude, >= {f['share_at_bound']:.0%} of "
                f"their entries sit exactly on it, step after step): the weights are clamped after each step, as a "
                f"WGAN critic is, which caps what the model can output{cost}",
                ev, location=f["optimizer"], step=f["step"], severity=None if stalled else Severity.INFO))
        return out
