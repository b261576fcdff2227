"""Training labels collapsed to a single class.

A preprocessing slip can destroy the labels without any error: integer class ids
divided by 255 and cast back (``(y / 255).long()`` is 0 for every id below 255), a
label column overwritten, a mask thresholded at the wrong value. The model then trains
on one class, its loss falls to ~0 at once, and its accuracy is that class's share.

``labels.single-class`` looks at the class counts of the training targets the sample
kept (:mod:`.sample`): every sampled batch holds the same single class although the
model scores several, and the sample spans the data (rows seen again in a later sampled
batch, or batches from two epochs), so a class-sorted loader's first batches do not
count, and the other classes are not so rare in the evaluation data that the sample could miss them
by chance (probability >= 1e-3 at their evaluation share: a 99:1 data set's minority, not a collapse).
It is a warning when the training loss collapsed far below the loss of a
K-class guess (the task became trivial) or the evaluation data holds other classes;
otherwise (e.g. contrastive losses whose positives are all at index 0, a loss that stays
high) it is said as info.
"""

from __future__ import annotations

import math
from typing import Iterable

import numpy as np

from nndoctor.checks import Check, register
from nndoctor.findings import Finding, Severity
from nndoctor.monitor.checks.data.sample import ObservedData
from nndoctor.monitor.curves import per_step
from nndoctor.monitor.events import RunEnd

__all__ = ["LabelsSingleClass"]

MIN_BATCHES = 4
MIN_TARGETS = 64
#: the final training loss below this share of log(K) means the model only had to output one class
COLLAPSED_LOSS_SHARE = 0.05
#: the other classes are this likely to be missed by the sampled targets, at their share of the evaluation
#: targets: a rare class (99:1 data), not labels collapsed
CHANCE_MISS = 1e-3


@register
class LabelsSingleClass(Check):
    """Every sampled training target is the same class."""

    code = "labels.single-class"
    needs = ("end",)

    def check(self, event: RunEnd) -> Iterable[Finding]:
        data = ObservedData.of(self.state)
        if data is None or data.train_counts is None or data.element_targets:
            return ()
        counts = data.train_counts
        present = np.flatnonzero(counts)
        total = int(counts.sum())
        if len(present) != 1 or total < MIN_TARGETS or data.train_target_batches < MIN_BATCHES:
            return ()
        if len(self.state.optimizers) > 1:
            return ()  # a GAN's generator step: all-"real" targets on purpose
        spans = data.revisited() or len(data.target_iterations) >= 2
        if not spans:
            return ()  # the first batches of a class-sorted loader look the same
        label = int(present[0])
        classes = data.n_classes or 2
        if classes < 2:
            return ()
        eval_classes = self._eval_classes(data)
        rare = self._rare_share(data, label)
        if rare is not None and (1.0 - rare) ** total >= CHANCE_MISS:
            return ()  # a class this rare in the evaluation data is easily missed by the sample: imbalance
        level = self._final_loss()
        collapsed = level is not None and level <= COLLAPSED_LOSS_SHARE * math.log(classes)
        others = sorted(c for c in eval_classes if c != label)
        severity = Severity.WARNING if collapsed or others else Severity.INFO
        loss_txt = (f"the training loss fell to {level:.3g} (a uniform guess over {classes} classes scores "
                    f"{math.log(classes):.3g}), so the model only learned to output class {label}"
                    if collapsed else (f"the training loss is {level:.3g}" if level is not None else ""))
        eval_txt = (f"; the evaluation targets hold classes {others[:10]} as well" if others else "")
        evidence = {"label": label, "counts": f"{total} of {total} sampled targets are class {label}",
                    "train_targets": total, "sampled_batches": data.train_target_batches,
                    "model_classes": classes, "losses": sorted(data.target_losses),
                    "epochs_sampled": len(data.target_iterations), "eval_classes": sorted(eval_classes)[:20],
                    "final_train_loss": round(level, 5) if level is not None else None,
                    "steps": f"{data.target_steps[0]}-{data.target_steps[-1]}" if data.target_steps else ""}
        return [self.finding(
            f"all {total} training targets in {data.train_target_batches} sampled batches (steps "
            f"{evidence['steps']}) are class {label}, although the model scores {classes} classes: the labels "
            f"collapsed to one class before training{'; ' + loss_txt if loss_txt else ''}{eval_txt}",
            evidence, location="training labels", severity=severity)]

    @staticmethod
    def _eval_classes(data: ObservedData) -> set[int]:
        out: set[int] = set()
        for p in data.passes:
            if p.counts is not None:
                out.update(int(c) for c in np.flatnonzero(p.counts))
        return out

    @staticmethod
    def _rare_share(data: ObservedData, label: int) -> float | None:
        """The share of evaluation targets that are not ``label`` (None without evaluation counts)."""
        counts = [np.asarray(p.counts, dtype=np.float64) for p in data.passes if p.counts is not None]
        if not counts:
            return None
        size = max(len(c) for c in counts)
        total = sum(np.pad(c, (0, size - len(c))) for c in counts)
        n = float(total.sum())
        if n <= 0 or label >= size:
            return None
        return float((n - total[label]) / n)

    def _final_loss(self) -> float | None:
        _, values = per_step(*self.state.losses.series())
        values = values[np.isfinite(values)]
        if len(values) < 8:
            return None
        return float(np.median(values[-max(4, len(values) // 4):]))
