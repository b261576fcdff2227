"""fit.overfitting from a validation accuracy: for scripts that evaluate accuracy only.

A script that measures ``(out.argmax(1) == y).float().mean()`` in its evaluation loop and no
validation loss leaves :mod:`.fit`'s rule nothing to read. The comparisons of predicted
indices with targets made without gradients (``Targets`` events named ``"compare"``) give an
accuracy per evaluation (the comparisons of one step pooled). Overfitting, as for the loss:
at the end of the run, the accuracy fell from its best for at least two evaluations after it, by more than
``MIN_DROP`` and more than ``NOISE_SE`` binomial standard errors of the two accuracies, is still
down (within ``RECOVERED`` of its largest fall since the best), while the training loss fell by
5% or more over the same span. With many evaluations (12 or more) both curves are smoothed by
rolling medians first. Runs with a validation loss (3 or more recorded) are left to :mod:`.fit`.
"""

from __future__ import annotations

import math
from typing import Any, Iterable

import numpy as np
import torch

from nndoctor.checks import Check, register
from nndoctor.findings import Finding
from nndoctor.monitor.checks.fit import train_between
from nndoctor.monitor.curves import not_an_objective, per_step, rolling_median
from nndoctor.monitor.events import RunEnd, Targets

__all__ = ["AccuracyOverfit"]

MIN_DROP = 0.02  # accuracy points the validation accuracy must lose from its best
NOISE_SE = 3.0  # ... and binomial standard errors of the difference
RECOVERED = 0.75  # the latest fall must be at least this share of the largest since the best
MAX_STEPS = 2048  # evaluations kept


@register
class AccuracyOverfit(Check):
    """Validation accuracy falling while the training loss keeps falling (accuracy-only evaluation)."""

    code = "fit.overfitting"
    needs = ("targets", "end")

    def __init__(self, state: Any) -> None:
        super().__init__(state)
        self._per_step: dict[int, list[Any]] = {}  # step -> [correct (tensor), total]
        self._done = False

    def check(self, event: Targets | RunEnd) -> Iterable[Finding]:
        if isinstance(event, Targets):
            self._on_compare(event)
            return ()
        if self._done:
            return ()
        found = self._judge()  # at the end of the run only: a dip that recovers later is not overfitting
        if found is None:
            return ()
        self._done = True
        return [found]

    def _on_compare(self, event: Targets) -> None:
        if event.name != "compare" or event.training or self._done:
            return
        last = self.state.last_forward
        if last is None or last[2]:
            return  # predictions of a forward with gradients (a training batch's accuracy): not an evaluation
        pred, target = event.input, event.target
        if pred.shape != target.shape or not pred.numel() or target.is_floating_point():
            return
        entry = self._per_step.get(event.step)
        if entry is None:
            if len(self._per_step) >= MAX_STEPS:
                return
            entry = self._per_step[event.step] = [torch.zeros((), dtype=torch.int64, device=pred.device), 0]
        entry[0] = entry[0] + (pred == target).sum()
        entry[1] += int(pred.numel())

    def _judge(self) -> Finding | None:
        if len(self.state.eval_losses) >= 3 or len(self._per_step) < 3 or not_an_objective(self.state):
            return None  # a validation loss: fit.py's rule reads it (or a training loss that is no objective)
        steps = sorted(self._per_step)
        totals = np.array([self._per_step[s][1] for s in steps], dtype=np.float64)
        correct = np.array([float(self._per_step[s][0]) for s in steps], dtype=np.float64)
        acc = correct / np.maximum(totals, 1.0)
        ts, tv = per_step(*self.state.losses.series())
        train = np.asarray(train_between(ts, tv, steps))
        if len(acc) >= 12:  # one small batch per evaluation: smooth over evaluations
            w = max(3, len(acc) // 6)
            acc, train = rolling_median(acc, w), rolling_median(train, w)
        best = int(np.argmax(acc))
        last = len(acc) - 1
        if last - best < 2 or not (math.isfinite(train[best]) and math.isfinite(train[last])):
            return None
        a_best, a_last, a_prev = float(acc[best]), float(acc[last]), float(acc[last - 1])
        n_best, n_last = totals[best], totals[last]
        se = math.sqrt(a_best * (1 - a_best) / n_best + a_last * (1 - a_last) / n_last)
        need = max(MIN_DROP, NOISE_SE * se)
        fell = a_best - a_last >= need and a_best - a_prev >= 0.5 * need
        fell = fell and a_best - a_last >= RECOVERED * (a_best - float(np.min(acc[best + 1:])))
        if not (fell and train[last] <= 0.95 * train[best]):
            return None
        evidence = {"best_val_accuracy": round(a_best, 4), "best_step": int(steps[best]),
                    "last_val_accuracy": round(a_last, 4), "last_step": int(steps[last]),
                    "train_loss_at_best": round(float(train[best]), 5),
                    "train_loss_last": round(float(train[last]), 5),
                    "examples_last": int(n_last), "evaluations": len(acc), "from": "accuracy"}
        return self.finding(
            f"the model overfits: the validation accuracy fell from {a_best:.1%} (step {steps[best]}) to "
            f"{a_last:.1%} (step {steps[last]}) while the training loss fell from {train[best]:.4g} to "
            f"{train[last]:.4g}", evidence, location="validation", step=int(steps[last]))
