"""labels: the evaluation labels are unrelated to the evaluation inputs.

The validation labels were shuffled (or sorted, or re-read) apart from the validation inputs:
``x_val = x_val[perm]`` without ``y_val = y_val[perm]``, a DataFrame re-indexed on one side, a
test set's label file in another order. The model trains well, and its validation accuracy sits
at chance whatever is changed; the usual reading is "overfitting".

Evidence, judged at the end of the run on the latest evaluation pass with a confusion matrix
(``EvalPass.confusion``, from the evaluation loop's loss calls or ``argmax == y`` comparisons):

* >= ``MIN_ROWS`` predictions over >= 2 true classes, the model predicting >= 2 classes (each
  >= 5% of the pass: not a constant prediction);
* no dependence between the predicted and the true class: a chi-square test of independence of
  the confusion matrix has p >= ``P_INDEPENDENT`` (a merely bad or overfit model still agrees
  with its labels far above chance: p ~ 0);
* the model fits its training data (the median training loss of the last quarter of the run at
  most ``TRAIN_LOSS_SHARE`` of the loss of predicting the class priors), and the
  training labels are learnable from the inputs (the out-of-fold probes of
  :mod:`.probe` on the observed training pairs beat the class priors clearly: z > 6 and >= 10
  points of accuracy or 10% of the priors' loss), so a model that memorised random training
  labels (chance on any held-out data) stays quiet.
"""

from __future__ import annotations

from typing import Iterable

import numpy as np
import torch

from nndoctor.checks import Check, register
from nndoctor.findings import Finding
from nndoctor.monitor.checks.data.mapping import best_mapping
from nndoctor.monitor.checks.data.probe import MIN_PAIRS, affordable, probe, train_chance_loss
from nndoctor.monitor.checks.data.sample import ObservedData
from nndoctor.monitor.curves import per_step
from nndoctor.monitor.events import RunEnd

__all__ = ["EvalLabelsUnrelated", "independence_p"]

MIN_ROWS = 100
MIN_PRED_SHARE = 0.05
P_INDEPENDENT = 0.01
TRAIN_LOSS_SHARE = 0.5
MIN_LOSSES = 20


def independence_p(confusion: np.ndarray) -> float:
    """p-value of Pearson's chi-square test of independence of a true x predicted count matrix."""
    c = confusion[confusion.sum(1) > 0][:, confusion.sum(0) > 0].astype(np.float64)
    if c.shape[0] < 2 or c.shape[1] < 2:
        return 1.0
    expected = np.outer(c.sum(1), c.sum(0)) / c.sum()
    chi2 = float(((c - expected) ** 2 / expected).sum())
    dof = (c.shape[0] - 1) * (c.shape[1] - 1)
    return float(torch.special.gammaincc(torch.tensor(dof / 2.0, dtype=torch.float64),
                                         torch.tensor(chi2 / 2.0, dtype=torch.float64)))


@register
class EvalLabelsUnrelated(Check):
    """Evaluation predictions independent of the evaluation labels, while training fits learnable labels."""

    code = "labels.eval-labels-unrelated"
    needs = ("end",)
    end_cost = 1  # probes at the end, after the cheap checks

    def check(self, event: RunEnd) -> Iterable[Finding]:
        data = ObservedData.of(self.state)
        if data is None or data.train_counts is None or len(self.state.optimizers) > 1 or data.element_targets:
            return []
        base = train_chance_loss(data, data.pair_loss or "cross_entropy")
        _, values = per_step(*self.state.losses.series())
        values = values[np.isfinite(values)]
        if base is None or base <= 0 or len(values) < MIN_LOSSES:
            return []
        level = float(np.median(values[-max(4, len(values) // 4):]))
        if level > TRAIN_LOSS_SHARE * base:
            return []
        p = next((q for q in reversed(data.passes) if q.confusion is not None and q.confusion.sum() >= MIN_ROWS), None)
        if p is None or p.confusion is None:
            return []
        c = p.confusion
        rows, preds = c.sum(1), c.sum(0)
        if np.count_nonzero(rows) < 2 or np.count_nonzero(preds >= MIN_PRED_SHARE * c.sum()) < 2:
            return []
        pval = independence_p(c)
        if pval < P_INDEPENDENT:
            return []
        if data.pair_rows < MIN_PAIRS or not data.single_input:
            return []
        x, y = np.concatenate(data.pairs_x), np.concatenate(data.pairs_y)
        if len(np.unique(y)) < 2:
            return []
        fitted = affordable(x, y, event, MIN_PAIRS, self.name())
        result = probe(*fitted, min_examples=MIN_PAIRS) if fitted is not None else None
        if result is None or not (result.z > 6.0 and (result.gain >= 0.1 * result.prior_loss
                                                       or result.best_accuracy - result.chance >= 0.1)):
            return []
        _, _, identity = best_mapping(c)
        evidence = {"pass": p.name, "eval_rows": int(c.sum()), "independence_p": round(pval, 4),
                    "eval_balanced_accuracy": round(identity, 3), "train_loss": round(level, 4), "chance_loss": round(base, 4),
                    "probe_accuracy": round(result.best_accuracy, 3), "majority_class_accuracy": round(result.chance, 3),
                    "eval_classes": int(np.count_nonzero(rows))}
        return [self.finding(
            f"on {p.name} the model's predictions are independent of the labels (chi-square p = {pval:.2g}, "
            f"balanced accuracy {identity:.0%} over {int(np.count_nonzero(rows))} classes) although it fits its "
            f"training data (loss {level:.3g} vs {base:.3g} for the class priors) and probes learn the training labels from the inputs "
            f"({result.best_accuracy:.0%} held out vs {result.chance:.0%} for the majority class): the evaluation "
            f"labels look shuffled or ordered apart from the evaluation inputs", evidence, location=p.name)]
