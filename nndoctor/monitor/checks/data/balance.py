"""Class balance of what the script trains on, judged from observed targets.

* ``data.class-imbalance``: the training targets are imbalanced (largest/smallest class
  >= 10:1, confidently: the ratio's lower bound is >= 5), with the per-class error of the
  script's own evaluation when it compares predictions or computes a loss there. When every sampled
  training target is one class and the evaluation targets hold the others at a share so small that
  the sample missed them by chance (probability >= 1e-3; 99:1 data), the imbalance is read from
  the evaluation targets.
* ``data.unseen-classes``: classes that occur in evaluation batches but never among the
  training targets (a split taken from class-sorted data), when random sampling would
  almost surely have shown them.
* ``data.unshuffled-batches``: most training batches hold a single class, far more often
  than random batches of that class mix would: the training data are sorted by class and
  not shuffled. Said at the end, or at a loss-curve read already when random batches of that
  class mix would be as pure with a chance under ``EARLY_CHANCE`` (binomial tail over the
  sampled batches).
"""

from __future__ import annotations

import math
from typing import Iterable

import numpy as np

from nndoctor.checks import Check, register
from nndoctor.evaluate.balance import class_balance
from nndoctor.findings import Finding, Severity
from nndoctor.monitor.checks.data.leakage import coverage, training_like
from nndoctor.monitor.checks.data.sample import ObservedData
from nndoctor.monitor.events import CurveDue, RunEnd

__all__ = ["ClassBalance", "UnseenClasses", "UnshuffledBatches"]

MIN_TARGETS = 200
MAX_RATIO = 10.0
EARLY_CHANCE = 1e-6  # data.unshuffled-batches before the end: random batches this unlikely to be as pure


def _eval_counts(data: ObservedData) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Targets and errors per class in the evaluation data that is not the training data.

    A script that evaluates every epoch reads the same data again: the latest pass over
    each evaluation set counts, so the figures are per example, not per example and epoch.
    """
    latest = {}
    for p in data.passes:
        if p.counts is not None:
            latest[p.loader.own_dataset_id if p.loader is not None else ("rows", p.rows)] = p
    counts = wrong = None
    c = coverage(data)
    for p in latest.values():
        if training_like(data, p, c):
            continue
        size = max(len(p.counts), len(counts) if counts is not None else 0)
        counts = np.pad(p.counts, (0, size - len(p.counts))) + (
            0 if counts is None else np.pad(counts, (0, size - len(counts))))
        if p.wrong is not None:
            w = np.pad(p.wrong, (0, size - len(p.wrong)))
            wrong = w if wrong is None else np.pad(wrong, (0, size - len(wrong))) + w
    return counts, wrong


@register
class ClassBalance(Check):
    """The training targets are dominated by some classes."""

    code = "data.class-imbalance"
    needs = ("end",)

    def check(self, event: RunEnd) -> Iterable[Finding]:
        data = ObservedData.of(self.state)
        counts = None if data is None else data.class_counts()
        if data is None or counts is None or counts.sum() < MIN_TARGETS:
            return ()
        if data.element_targets:
            return ()  # token or pixel classes (language models, segmentation) are imbalanced by nature
        if data.unshuffled(len(self.state.optimizers)):
            return ()  # sampled batches of sorted data misstate the class mix
        present = np.flatnonzero(counts)
        if len(present) < 2:
            return self._rare_in_evaluation(data, counts)
        small, large = int(counts[present].min()), int(counts[present].max())
        # lower confidence bound of the ratio: the smallest count could be this much larger
        if large / small < MAX_RATIO or large / (small + 2.0 * math.sqrt(small) + 1.0) < MAX_RATIO / 2:
            return ()
        labels = np.repeat(present, counts[present])
        balance = class_balance(labels)
        eval_counts, eval_wrong = _eval_counts(data)
        if eval_counts is not None and eval_wrong is not None and eval_counts.sum() >= 50:
            balance.per_class_error = {int(c): float(eval_wrong[c] / eval_counts[c])
                                       for c in present if c < len(eval_counts) and eval_counts[c] > 0}
        found = balance.finding(max_ratio=MAX_RATIO)
        if found is None:
            return ()
        evidence = dict(found.evidence)
        evidence["observed_training_targets"] = int(counts.sum())
        message = found.message.replace("classes are imbalanced", "the training targets are imbalanced")
        severity = Severity.WARNING
        if data.weighted_loss:
            severity = Severity.INFO
            message += " (the loss is already weighted)"
        return [self.finding(message + f"; counted over {int(counts.sum())} targets of sampled training batches",
                             evidence, location="training targets", severity=severity)]


    def _rare_in_evaluation(self, data: ObservedData, counts: np.ndarray) -> list[Finding]:
        """Every sampled training target is one class, and the evaluation data holds the others at a share so
        small that the sample missed them by chance (else data.unseen-classes or labels.single-class speak):
        the imbalance is read from the evaluation targets."""
        eval_counts, _ = _eval_counts(data)
        if eval_counts is None or eval_counts.sum() < MIN_TARGETS or len(np.flatnonzero(eval_counts)) < 2:
            return []
        n_train, label = int(counts.sum()), int(np.flatnonzero(counts)[0])
        if label >= len(eval_counts) or eval_counts[label] == 0:
            return []
        rare = 1.0 - eval_counts[label] / eval_counts.sum()
        if n_train * math.log1p(-min(rare, 0.999)) < math.log(1e-3):
            return []  # missing them by chance is implausible: not an imbalance
        present = np.flatnonzero(eval_counts)
        found = class_balance(np.repeat(present, eval_counts[present].astype(np.int64))).finding(max_ratio=MAX_RATIO)
        if found is None:
            return []
        evidence = {**found.evidence, "observed_training_targets": n_train, "training_classes": [label]}
        message = (f"{found.message.replace('classes are imbalanced', 'the classes are imbalanced')}; counted over "
                   f"{int(eval_counts.sum())} evaluation targets: all {n_train} targets of the sampled training "
                   f"batches are class {label}, the rarer classes too rare to show up in them")
        severity = Severity.INFO if data.weighted_loss else Severity.WARNING
        return [self.finding(message, evidence, location="training targets", severity=severity)]


@register
class UnseenClasses(Check):
    """Classes in the evaluation data that training never shows."""

    code = "data.unseen-classes"
    needs = ("end",)

    def check(self, event: RunEnd) -> Iterable[Finding]:
        data = ObservedData.of(self.state)
        if data is None or data.train_counts is None or data.train_counts.sum() < 50 or data.element_targets:
            return ()  # (tokens or pixels of one example are no independent sample of the classes)
        if data.unshuffled(len(self.state.optimizers)):
            return ()  # the sampled batches are not a random sample of the training set
        eval_counts, _ = _eval_counts(data)
        if eval_counts is None:
            return ()
        n_train = int(data.train_counts.sum())
        total = int(eval_counts.sum())
        unseen = []
        for c in np.flatnonzero(eval_counts):
            seen = c < len(data.train_counts) and data.train_counts[c] > 0
            share = eval_counts[c] / total
            # chance that n_train random training targets all miss a class this frequent
            if not seen and eval_counts[c] >= 5 and n_train * math.log1p(-min(share, 0.999)) < math.log(1e-3):
                unseen.append(int(c))
        if not unseen:
            return ()
        shown = ", ".join(str(c) for c in unseen[:10]) + (" ..." if len(unseen) > 10 else "")
        n_unseen = int(sum(eval_counts[c] for c in unseen))
        evidence = {"classes": shown, "eval_examples": n_unseen, "eval_total": total,
                    "observed_training_targets": n_train,
                    "training_classes": [int(c) for c in np.flatnonzero(data.train_counts)][:50]}
        return [self.finding(
            f"class{'es' if len(unseen) > 1 else ''} {shown} occur{'' if len(unseen) > 1 else 's'} in "
            f"{n_unseen} of {total} evaluation examples but never among the {n_train} training targets "
            "observed: the split looks taken from class-sorted data, and the model cannot learn these classes",
            evidence, location="evaluation targets")]


@register
class UnshuffledBatches(Check):
    """Training batches each holding one class: class-sorted data without shuffling."""

    code = "data.unshuffled-batches"
    needs = ("curve", "end")

    def check(self, event: RunEnd | CurveDue) -> Iterable[Finding]:
        """Judged at the end, and already at the loss-curve reads when the sampled batches so far could
        hardly be that pure by chance (a sorted loader shows it within its first batches); said once."""
        data = ObservedData.of(self.state)
        if data is None or data.element_targets or not data.unshuffled(len(self.state.optimizers)):
            return ()
        if event.kind == "curve" and data.pure_batches_by_chance() > EARLY_CHANCE:
            return ()
        self.retire()
        single = int(sum(p >= 0.999 for p in data.batch_purity))
        classes = int(np.count_nonzero(data.train_counts))
        evidence = {"single_class_batches": single, "batches": len(data.batch_purity), "classes": classes}
        return [self.finding(
            f"{single} of {len(data.batch_purity)} sampled training batches hold a single class although "
            f"{classes} classes occur: the training data are sorted by class and not shuffled",
            evidence, location="training batches")]
