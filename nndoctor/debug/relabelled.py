"""labels: the same training input comes back with a different class label.

A dataset whose ``__getitem__`` draws the label at random, a "label augmentation" that relabels a
share of the examples on every pass, a batch whose inputs were re-sorted (by length, for packing)
while its labels were not, inputs and labels permuted with two different permutations each
epoch: in all of them a given input is paired with one label now and another later, so the model
is trained on wrong pairs. ``nndoctor overfit`` finds this by iterating the loader twice; this is
the same evidence gathered while the unchanged script trains.

Evidence, on sampled training steps: every row of the model's data input (no autograd history,
>= ``MIN_ROW`` values a row, constant rows left out) is fingerprinted together with
its class label, read from a classification loss on the same step whose targets have one entry
(or one row) per input row: integer targets of ``cross_entropy`` / ``nll_loss``, {0, 1} targets of
the BCE losses. An input seen again on a later sampled step is a match; a match whose label
differs is a change. At the end of the run, >= ``MIN_MATCHES`` matches with >= ``WARN_SHARE`` of
them changed is a warning (``INFO_SHARE`` and above is info). Quiet: augmented inputs (they never
match), data with genuine duplicates that carry conflicting labels (one such conflict inside a
single batch silences the check), low-cardinality inputs (one-hot rows, fewer than ``MIN_DISTINCT``
distinct inputs: a skip-gram's centre word has several context labels by nature) and contrastive
targets ``arange(N)`` over (N, N) scores. Not
told apart: pseudo-labels that a semi-supervised script recomputes from the model on the same,
unaugmented inputs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable

import torch

from nndoctor.checks import Check, register
from nndoctor.findings import Finding, Severity
from nndoctor.monitor.checks.data.sample import row_hashes
from nndoctor.monitor.events import LossCall, ModelInput, RunEnd
from nndoctor.monitor.tensors import is_integer

__all__ = ["RelabelledInputs"]

MIN_ROW = 8
MIN_MATCHES = 20
#: distinct inputs remembered before a verdict: fewer is low-cardinality data (words, categories)
MIN_DISTINCT = 50
WARN_SHARE, INFO_SHARE = 0.10, 0.03
#: rows of a batch that are fingerprinted, rows remembered in all
BATCH_ROWS, MAX_KEYS = 512, 200_000

_CLASS_LOSSES = frozenset({"cross_entropy", "nll_loss"})
_BINARY_LOSSES = frozenset({"binary_cross_entropy", "binary_cross_entropy_with_logits", "multilabel_soft_margin_loss"})


@dataclass
class _Pending:
    step: int
    rows: int
    keys: list[int | None]  # None: a constant row (blank input), never matched
    model: str


@register
class RelabelledInputs(Check):
    """Training inputs seen twice (exactly the same values) with two different class labels."""

    code = "labels.changed-between-epochs"
    needs = ("model_input", "loss", "end")
    sampled_only = frozenset({"model_input", "loss"})

    def __init__(self, state: Any) -> None:
        super().__init__(state)
        self._pending: _Pending | None = None
        self._seen: dict[int, tuple[int, int]] = {}  # input key -> (label key, step)
        self._matches = 0
        self._changed = 0
        self._examples: list[tuple[int, int]] = []  # (first step, later step) of changed labels
        self._same_batch_conflict = False
        self._skipped_sites: set[str] = set()
        self._first_step: int | None = None
        self._loss = ""
        self._model = ""

    def check(self, event: ModelInput | LossCall | RunEnd) -> Iterable[Finding]:
        if isinstance(event, ModelInput):
            self._on_input(event)
        elif isinstance(event, LossCall):
            self._on_loss(event)
        elif isinstance(event, RunEnd):
            return self._on_end()
        return ()

    def _on_input(self, event: ModelInput) -> None:
        self._pending = None
        if not event.grad_enabled or not event.training or self._same_batch_conflict:
            return
        x = next((a for a in (*event.args, *event.kwargs.values()) if isinstance(a, torch.Tensor)), None)
        if x is None or x.dim() < 2 or x.grad_fn is not None or x[0].numel() < MIN_ROW or x.is_complex():
            return
        rows = x[:BATCH_ROWS].detach()
        hashes, constant = row_hashes(rows)
        flat = rows.reshape(rows.shape[0], -1)
        one_hot = ((flat != 0).sum(1) == 1) & ((flat == 1).sum(1) == 1)  # a token in disguise (skip-gram input)
        keys = [None if c or o else h for h, c, o in zip(hashes, constant, one_hot.tolist())]
        self._pending = _Pending(step=event.step, rows=int(x.shape[0]), keys=keys, model=event.name)

    def _labels(self, event: LossCall, rows: int) -> list[int] | None:
        t, scores = event.target, event.input
        if t is None or t.dim() == 0 or int(t.shape[0]) != rows or t.grad_fn is not None:
            return None
        if event.name in _CLASS_LOSSES:
            if not is_integer(t):
                return None
            if (t.dim() == 1 and isinstance(scores, torch.Tensor) and scores.dim() == 2
                    and scores.shape[0] == scores.shape[1] == rows
                    and bool((t == torch.arange(rows, device=t.device)).all())):
                self._skipped_sites.add(event.site)  # contrastive targets: the position in the batch
                return None
        elif event.name in _BINARY_LOSSES:
            if not t.is_floating_point() or not bool(((t == 0) | (t == 1)).all()):
                return None
        else:
            return None
        return row_hashes(t[:BATCH_ROWS].reshape(min(rows, BATCH_ROWS), -1))[0]

    def _on_loss(self, event: LossCall) -> None:
        pending = self._pending
        if (pending is None or not event.grad_enabled or pending.step != event.step
                or event.site in self._skipped_sites or self._same_batch_conflict):
            return
        labels = self._labels(event, pending.rows)
        if labels is None:
            return
        self._pending = None  # one loss per forward: the first classification loss that matches the rows
        batch: dict[int, int] = {}
        for key, label in zip(pending.keys, labels):
            if key is None:
                continue
            if batch.setdefault(key, label) != label:
                self._same_batch_conflict = True  # genuine duplicates with conflicting labels in the data
                return
        if self._first_step is None:
            self._first_step, self._loss, self._model = event.step, event.name, pending.model
        for key, label in batch.items():
            old = self._seen.get(key)
            if old is None:
                if len(self._seen) < MAX_KEYS:
                    self._seen[key] = (label, event.step)
                continue
            if old[1] == event.step:
                continue
            self._matches += 1
            if old[0] != label:
                self._changed += 1
                if len(self._examples) < 3:
                    self._examples.append((old[1], event.step))
            self._seen[key] = (label, event.step)

    def _on_end(self) -> list[Finding]:
        if self._same_batch_conflict or self._matches < MIN_MATCHES or len(self._seen) < MIN_DISTINCT:
            return []  # (few distinct inputs: low-cardinality data, where one input has several labels by nature)
        share = self._changed / self._matches
        if share < INFO_SHARE:
            return []
        steps = ", ".join(f"step {a} then {b}" for a, b in self._examples)
        ev = {"model": self._model, "loss": self._loss, "matched": self._matches, "changed": self._changed,
              "share": round(share, 4), "examples": steps, "inputs_remembered": len(self._seen)}
        return [self.finding(
            f"{self._changed} of {self._matches} training inputs of {self._model} seen again on a later sampled step "
            f"came back with a different {self._loss} label ({share:.0%}; e.g. {steps}): inputs and labels are "
            f"paired differently from one pass to the next (labels drawn, relabelled or re-ordered apart from "
            f"their inputs), so the model is trained on wrong pairs",
            ev, location=self._model, step=self._first_step,
            severity=None if share >= WARN_SHARE else Severity.INFO)]
