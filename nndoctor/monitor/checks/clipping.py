"""optimizer: gradient clipping with a threshold far below the gradient's size, on every step.

The clip calls of sampled steps are recorded by :mod:`nndoctor.monitor.clipping` (threshold, the
gradient's size before clipping). Judged at the curve reads and the end: every recorded call
clipped, by a median factor >= ``FACTOR``, and the loss has hardly moved. The category is
``optimizer``: the threshold is a setting of the update rule (Keras takes it as the optimizer's
``clipnorm``), the gradients themselves are healthy, and the fix is on the clip call; the too-low
learning rate, plateau and underfit it produces are linked to it by the optimizer -> lr / loss-curve
/ fit edge of :mod:`nndoctor.rootcause`.
"""

from __future__ import annotations

import math
import statistics
from typing import Any, Iterable

from nndoctor.checks import Check, register
from nndoctor.findings import Finding
from nndoctor.monitor.checks.lr import ADAPTIVE, current_lr
from nndoctor.monitor.clipping import CLIPS_KEY, ClipCall
from nndoctor.monitor.curves import analyze_losses
from nndoctor.monitor.events import CurveDue, RunEnd

__all__ = ["ClipTooTight", "FACTOR", "MIN_CALLS", "SLOW"]

MIN_CALLS = 5  # sampled clip calls needed
FACTOR = 100.0  # median gradient size / threshold
SLOW = 0.25  # the loss fell less than this fraction of its start
MIN_LOSSES = 30
EPS_MARGIN = 10.0  # Adam-like: the clipped gradient per element within this factor of eps


def _calls(state: Any) -> list[ClipCall]:
    # (a clip that acts on no applied gradient, before backward() or after step(), slows nothing:
    # optimizer.clip-has-no-effect, nndoctor/monitor/checks/clip_order.py)
    calls = [c for c in state.extra.get(CLIPS_KEY, ())
             if math.isfinite(c.measured) and c.threshold > 0 and c.stale is not True]
    if not calls:
        return []
    methods = [c.method for c in calls]
    main = max(set(methods), key=methods.count)
    return [c for c in calls if c.method == main]


@register
class ClipTooTight(Check):
    """clip_grad_norm_/clip_grad_value_ cuts every step's gradient by 100x+ and the loss crawls."""

    code = "optimizer.clip-too-tight"
    needs = ("curve", "end")

    def __init__(self, state: Any) -> None:
        super().__init__(state)
        self._done = False

    def check(self, event: CurveDue | RunEnd) -> Iterable[Finding]:
        if self._done:
            return ()
        calls = _calls(self.state)
        if len(calls) < MIN_CALLS or any(c.measured <= c.threshold for c in calls):
            return ()  # too few seen, or a clip that lets some steps through
        factors = [c.measured / c.threshold for c in calls]
        factor = statistics.median(factors)
        if factor < FACTOR:
            return ()
        curve = analyze_losses(self.state)
        if curve.n < MIN_LOSSES or not (math.isfinite(curve.start) and math.isfinite(curve.end)):
            return ()
        drop = (curve.start - curve.end) / max(abs(curve.start), 1e-12)
        if drop >= SLOW:
            return ()
        base = self.state.extra.get("nndoctor.loss_baseline")
        if isinstance(base, (int, float)) and base > 0 and curve.end < 0.5 * base:
            return ()
        opts = self.state.live_optimizers()
        info, opt = opts[0] if opts else (None, None)
        cls = type(opt).__name__ if opt is not None else ""
        last = calls[-1]
        per_element = last.threshold / math.sqrt(max(last.numel, 1)) if last.method == "clip_grad_norm_" \
            else last.threshold
        if cls in ADAPTIVE:
            eps = opt.param_groups[0].get("eps", 1e-8) if opt.param_groups else 1e-8
            if not isinstance(eps, (int, float)) or per_element > EPS_MARGIN * max(float(eps), 1e-12):
                return ()  # Adam rescales the clipped gradient back: the step size is unchanged
        self._done = True
        self.retire()  # (its verdict is given: nothing more to hear but the end)
        arg = "max_norm" if last.method == "clip_grad_norm_" else "clip_value"
        what = "norm" if last.method == "clip_grad_norm_" else "largest |element|"
        typical = statistics.median(c.measured for c in calls)
        lr = current_lr(opt) if opt is not None else None
        name = info.name if info is not None else "optimizer"
        ev: dict[str, Any] = {
            "method": last.method, "arg": arg, "threshold": f"{last.threshold:g}", "site": last.site or "the clip call",
            "typical": f"{typical:.3g}", "clip_factor_median": float(f"{factor:.3g}"),
            "clip_factor_min": float(f"{min(factors):.3g}"), "sampled_calls": len(calls),
            "optimizer": name, "optimizer_class": cls, "lr": lr,
            "start_loss": round(curve.start, 6), "end_loss": round(curve.end, 6), "steps": curve.n}
        at = f" at {last.site}" if last.site else ""
        return [self.finding(
            f"{last.method}({arg}={last.threshold:g}){at} cut the gradient on every one of the {len(calls)} "
            f"sampled steps, by {factor:.3g}x (median; its {what} before clipping is ~{typical:.3g}): each "
            f"update of {name} ({cls or 'optimizer'}, lr {lr if lr is not None else '?'}) is ~1/{factor:.0f} of "
            f"what the learning rate means, and the loss moved only {max(drop, 0) * 100:.2g}% in {curve.n} steps "
            f"({curve.start:.4g} -> {curve.end:.4g})",
            ev, location=name, step=calls[0].step)]
