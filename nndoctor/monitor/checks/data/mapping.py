"""labels: the evaluation split's labels are encoded differently from the training split's.

A class-to-index mapping built separately per split (``sorted(set(names))`` on each file, a
LabelEncoder fitted on the test set, one split missing a class so every later id shifts): the
model fits the training set, but on the evaluation pass its predictions agree with a remapping of
the labels far better than with the labels themselves. The confusion matrix shows it: a
non-identity one-to-one mapping of the true classes onto the predicted ones explains most
predictions.

Evidence: the confusion matrix of each evaluation pass (``EvalPass.confusion``: predictions and
targets of the evaluation loop's loss calls or ``argmax == y`` comparisons, classes < 32) and the
agreement of the sampled training batches with their own labels. For the latest pass with >= ``MIN_ROWS``
predictions and >= 2 true classes, a one-to-one mapping true -> predicted class is chosen greedily
(largest cell first); reported when its balanced accuracy (mean per-class recall under the mapping)
is >= ``MAPPED`` and exceeds the identity's by >= ``GAIN``, the classes it moves hold >= 30% of the
pass. A warning when the model fits its training batches (identity balanced accuracy >= ``TRAIN_FIT``
on the sampled training batches, better than any remapping), info when no training predictions were
seen. A model that is merely bad on validation (diffuse confusion), overfitting, a constant
prediction under class imbalance (one class only can be mapped) stay quiet.
"""

from __future__ import annotations

from typing import Any, Iterable

import numpy as np

from nndoctor.checks import Check, register
from nndoctor.findings import Finding, Severity
from nndoctor.monitor.checks.data.sample import ObservedData, add_confusion, class_targets
from nndoctor.monitor.events import RunEnd, Targets

__all__ = ["EvalLabelMapping", "best_mapping"]

MIN_ROWS = 30
MAPPED = 0.7  # balanced accuracy under the remapping
GAIN = 0.3  # ... above the identity's
MOVED = 0.3  # share of the pass in the classes the mapping moves
TRAIN_FIT = 0.6
TRAIN_BATCHES = 16  # latest sampled training batches kept for the training fit


def best_mapping(confusion: np.ndarray) -> tuple[dict[int, int], float, float]:
    """(true -> predicted one-to-one mapping, its balanced accuracy, the identity's balanced accuracy)
    for a true x predicted count matrix; greedy on the largest remaining cell."""
    rows = confusion.sum(1)
    present = np.flatnonzero(rows)
    if present.size == 0:
        return {}, 0.0, 0.0
    recall = confusion[present] / rows[present, None]
    mapping: dict[int, int] = {}
    used: set[int] = set()
    order = np.dstack(np.unravel_index(np.argsort(-recall, axis=None), recall.shape))[0]
    for i, j in order:
        t = int(present[i])
        if t in mapping or int(j) in used or recall[i, j] <= 0:
            continue
        mapping[t] = int(j)
        used.add(int(j))
    mapped = float(np.mean([confusion[t, mapping[t]] / rows[t] if t in mapping else 0.0 for t in present]))
    identity = float(np.mean([confusion[t, t] / rows[t] for t in present]))
    return mapping, mapped, identity


@register
class EvalLabelMapping(Check):
    """Evaluation predictions agree with a remapping of the labels, not with the labels."""

    code = "labels.encoded-differently-in-eval"
    needs = ("targets", "end")

    def __init__(self, state: Any) -> None:
        super().__init__(state)
        self._train: list[np.ndarray] = []  # confusion of the latest sampled training batches
        self._seen = -1

    def check(self, event: Targets | RunEnd) -> Iterable[Finding]:
        if isinstance(event, RunEnd):
            return self._judge()
        if event.training and event.step != self._seen:
            got = class_targets(event)
            if got is not None and got[1] is not None and got[0].size and got[1].shape == got[0].shape:
                self._seen = event.step
                self._train = (self._train + [add_confusion(None, got[0], got[1])])[-TRAIN_BATCHES:]
        return ()

    def _judge(self) -> list[Finding]:
        data = ObservedData.of(self.state)
        if data is None:
            return []
        train = sum(self._train) if self._train else None
        train_fit = train_mapped = None
        if train is not None and train.sum() >= MIN_ROWS:
            _, train_mapped, train_fit = best_mapping(train)
        for p in reversed(data.passes):
            c = p.confusion
            if c is None or c.sum() < MIN_ROWS or np.count_nonzero(c.sum(1)) < 2:
                continue
            mapping, mapped, identity = best_mapping(c)
            moved = {t: j for t, j in mapping.items() if t != j}
            moved_rows = float(sum(c[t].sum() for t in moved)) / float(c.sum())
            # only the latest evaluation pass is judged: a pass made before training (an untrained model
            # can split separable classes the wrong way round) says nothing about the labels
            if mapped < MAPPED or mapped - identity < GAIN or moved_rows < MOVED:
                return []
            if train_fit is not None and (train_fit < TRAIN_FIT or (train_mapped or 0.0) > train_fit + 1e-9):
                return []  # the model does not fit its training labels either: not a remapping
            pairs = ", ".join(f"{t}->{j}" for t, j in sorted(moved.items())[:8])
            ev = {"pass": p.name, "eval_rows": int(c.sum()), "mapping": {int(t): int(j) for t, j in moved.items()},
                  "eval_balanced_accuracy": round(identity, 3), "remapped_balanced_accuracy": round(mapped, 3),
                  "train_balanced_accuracy": None if train_fit is None else round(train_fit, 3),
                  "moved_share": round(moved_rows, 3)}
            fit = (f"while it fits its training batches ({100 * train_fit:.0f}%)" if train_fit is not None
                   else "(no training predictions were seen to compare)")
            msg = (f"on {p.name} the model's predictions match the labels only {100 * identity:.0f}% (balanced "
                   f"accuracy) {fit}, but {100 * mapped:.0f}% once the labels are remapped ({pairs}, true -> "
                   f"predicted): the evaluation labels look encoded differently from the training labels (a "
                   f"class-to-index mapping built per split)")
            return [self.finding(msg, ev, location=p.name,
                                 severity=None if train_fit is not None else Severity.INFO)]
        return []
