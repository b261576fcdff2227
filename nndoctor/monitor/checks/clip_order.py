"""optimizer.clip-has-no-effect: gradient clipping called where it cannot touch an applied gradient.

``clip_grad_norm_`` / ``clip_grad_value_`` must run between ``loss.backward()`` and
``optimizer.step()``. Called before ``backward()`` (right after ``zero_grad()``) it clips gradients
that are empty or about to be replaced; called after ``step()`` it clips gradients that were
already applied and are then cleared. Either way no update is ever clipped: a run that relies on
clipping (an RNN, a high learning rate) explodes as if it had none.

Evidence: the clip calls of sampled steps (:mod:`nndoctor.monitor.clipping`), each marked
``stale`` when no backward ran since the latest step of the optimizer holding the clipped
parameters. Reported when >= ``MIN_CALLS`` calls with a finite threshold were stale and none was
not (a clip before the step anywhere, or a manual update without an optimizer, stays quiet; a norm
read for logging with ``max_norm=inf`` is not a clip). A warning when clipping would have acted: on a
sampled step with a stale clip, the gradients the optimizer then applies (read at its pre-step hook)
exceed the threshold (norm, or largest element for ``clip_grad_value_``), or a clip after the step
measured applied gradients above it; otherwise info (the clip is misplaced but never needed).
"""

from __future__ import annotations

import math
from typing import Any, Iterable

import torch

from nndoctor.checks import Check, register
from nndoctor.findings import Finding, Severity
from nndoctor.monitor.clipping import CLIPS_KEY, ClipCall
from nndoctor.monitor.events import RunEnd, StepEvent
from nndoctor.monitor.tensors import local_grad

__all__ = ["ClipHasNoEffect", "MIN_CALLS"]

MIN_CALLS = 3
#: a threshold at or above this is a norm read (``max_norm=float('inf')`` or a huge number), not a clip
NO_CLIP = 1e6


def _clips(state: Any) -> list[ClipCall]:
    return [c for c in state.extra.get(CLIPS_KEY, ()) if math.isfinite(c.threshold) and 0 < c.threshold < NO_CLIP]


@register
class ClipHasNoEffect(Check):
    """Every recorded gradient clip ran before backward() or after step(): no applied gradient is clipped."""

    code = "optimizer.clip-has-no-effect"
    needs = ("step", "end")
    step_phases = frozenset({"pre"})
    sampled_only = frozenset({"step"})

    def __init__(self, state: Any) -> None:
        super().__init__(state)
        self._applied: list[tuple[float, float]] = []  # (gradient size applied, threshold) on stale-clip steps

    def check(self, event: StepEvent | RunEnd) -> Iterable[Finding]:
        if isinstance(event, StepEvent):
            self._measure(event)
            return ()
        return self._judge()

    def _measure(self, event: StepEvent) -> None:
        calls = [c for c in _clips(self.state) if c.step == event.step]
        if not calls or len(self._applied) >= 64 or not all(c.stale for c in calls):
            return
        call = calls[-1]
        grads = [g for group in event.optimizer.param_groups for p in group["params"]
                 if (g := local_grad(p)) is not None and g.numel() and not g.is_sparse]
        if not grads:
            return
        with torch.no_grad():
            if call.method == "clip_grad_value_":
                size = torch.stack([g.detach().abs().max().float() for g in grads]).max()
            else:
                size = torch.stack([g.detach().float().norm() for g in grads]).norm()
        self._applied.append((float(size), call.threshold))

    def _judge(self) -> list[Finding]:
        calls = _clips(self.state)
        stale = [c for c in calls if c.stale is True]
        if len(stale) < MIN_CALLS or any(c.stale is False for c in calls):
            return []
        exceeded = [size for size, threshold in self._applied if math.isfinite(size) and size > threshold]
        exceeded += [c.measured for c in stale if c.numel and math.isfinite(c.measured) and c.measured > c.threshold]
        empty = sum(1 for c in stale if not c.numel or c.measured == 0)  # (none yet, or zeroed)
        first = stale[0]
        where = ("before backward(): the gradients it clips are empty or about to be replaced"
                 if empty >= len(stale) / 2 else
                 "after step(): the gradients it clips were already applied")
        size = "norm" if first.method == "clip_grad_norm_" else "largest element"
        effect = (f"; the applied gradients' {size} reached {max(exceeded):.3g}, above the threshold "
                  f"{first.threshold:g}, so clipping would have acted" if exceeded else
                  f"; the applied gradients stayed below the threshold {first.threshold:g} where measured, "
                  "so it has not mattered yet")
        msg = (f"{first.method} at {first.site} runs {where}: no gradient that the optimizer applies is "
               f"ever clipped ({len(stale)} of {len(calls)} sampled clip calls){effect}")
        ev = {"method": first.method, "site": first.site, "threshold": first.threshold, "stale_calls": len(stale),
              "clip_calls": len(calls), "calls_without_gradients": empty,
              "largest_applied": round(max(exceeded), 4) if exceeded else None}
        return [self.finding(msg, ev, location=first.site, step=first.step,
                             severity=None if exceeded else Severity.INFO)]
