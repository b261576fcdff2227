"""Evaluation regression targets on another scale than the training targets.

A regression script standardises (or log-transforms, or divides by 255) its training targets
and forgets the validation or test targets, or the other way round: the model's predictions
are on the training targets' scale, the evaluation loss compares them with raw values, and
the reported validation error is meaningless (often thousands of times the training loss,
read as "overfitting").

``preprocessing.eval-targets-differ`` keeps running statistics of the target and of the
prediction of regression losses (``mse_loss``, ``l1_loss``, ``smooth_l1_loss``, ``huber_loss``)
per target shape (the dims after the batch), in training (with gradients, sampled steps) and
in evaluation loops (no gradient). It judges once both sides have ``MIN_BATCHES`` batches and
``MIN_VALUES`` values (or at the end of the run) and reports when

* the evaluation targets' std differs ``STD_RATIO`` x or more from the training targets', or
  their mean is ``MEAN_SHIFT`` or more training stds away; and
* the evaluation predictions are still on the training targets' scale (std within
  ``STD_RATIO`` x, mean within ``PRED_SHIFT`` training stds): the model was not given other
  data, its targets were prepared differently.

Predictions mapped back to the raw scale before the evaluation loss (``inverse_transform``)
follow the targets: quiet. Another split of the same data moves the statistics far less.
"""

from __future__ import annotations

import math
from typing import Any, Iterable

from nndoctor.checks import Check, register
from nndoctor.debug.preprocessing import fmt
from nndoctor.findings import Finding
from nndoctor.monitor.events import RunEnd, Targets
from nndoctor.monitor.target_scales import REGRESSION, target_scales

__all__ = ["EvalTargetScale"]

MIN_BATCHES = 2
MIN_VALUES = 16
STD_RATIO = 5.0
MEAN_SHIFT = 10.0
PRED_SHIFT = 3.0


@register
class EvalTargetScale(Check):
    """Regression targets of the evaluation loop on another scale than the training targets."""

    code = "preprocessing.eval-targets-differ"
    needs = ("targets", "end")

    def __init__(self, state: Any) -> None:
        super().__init__(state)
        self._scales = target_scales(state)
        self._done: set[tuple[int, ...]] = set()

    def check(self, event: Targets | RunEnd) -> Iterable[Finding]:
        if isinstance(event, RunEnd):
            sc = self._scales
            return [f for key in list(sc.eval) if key in sc.train and key not in self._done
                    for f in self._judge(key, final=True)]
        if event.name not in REGRESSION:
            return ()
        key = self._scales.feed(event)
        if key is None or key in self._done:
            return ()
        if key in self._scales.train and key in self._scales.eval:
            return self._judge(key, final=False)
        return ()

    def _judge(self, key: tuple[int, ...], *, final: bool) -> list[Finding]:
        tr, ev = self._scales.train[key], self._scales.eval[key]
        enough = min(tr.target.n, ev.target.n) >= MIN_VALUES
        if not enough or (not final and min(tr.target.batches, ev.target.batches) < MIN_BATCHES):
            return []
        self._done.add(key)
        ts, es, ps = tr.target.std, ev.target.std, ev.pred.std
        if not (ts > 0 and math.isfinite(ts) and math.isfinite(es) and math.isfinite(ps)):
            return []
        ratio = es / ts
        shift = abs(ev.target.mean - tr.target.mean) / ts
        scaled = ratio >= STD_RATIO or ratio <= 1.0 / STD_RATIO
        if not scaled and shift < MEAN_SHIFT:
            return []
        pred_ratio = ps / ts if ps > 0 else 0.0
        pred_shift = abs(ev.pred.mean - tr.target.mean) / ts
        if pred_shift > PRED_SHIFT or not (1.0 / STD_RATIO < pred_ratio < STD_RATIO or ps == 0):
            return []  # the predictions moved with the targets: other data, or mapped back on purpose
        loss = self._scales.losses.get(key, "the regression loss")
        evidence = {"loss": loss, "target_shape": list(key),
                    "train_target_mean": round(tr.target.mean, 4), "train_target_std": round(ts, 4),
                    "eval_target_mean": round(ev.target.mean, 4), "eval_target_std": round(es, 4),
                    "eval_pred_mean": round(ev.pred.mean, 4), "eval_pred_std": round(ps, 4),
                    "std_ratio": round(ratio, 3), "mean_shift_in_train_stds": round(shift, 2),
                    "train_batches": tr.target.batches, "eval_batches": ev.target.batches}
        return [self.finding(
            f"the evaluation targets of {loss} are on another scale than the training targets: training mean "
            f"{fmt(tr.target.mean)}, std {fmt(ts)} vs evaluation (no gradient) mean {fmt(ev.target.mean)}, std "
            f"{fmt(es)}, while the model's evaluation predictions stay on the training scale (mean "
            f"{fmt(ev.pred.mean)}, std {fmt(ps)}): the targets were scaled for one split only, and the "
            f"evaluation loss measures the scaling, not the model", evidence, location=loss)]
