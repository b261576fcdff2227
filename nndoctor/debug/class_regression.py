"""loss-input: class ids regressed with a one-output regression loss (MSE/L1/SmoothL1/Huber).

Integer class labels (``0..K-1``, ``K >= 3``) given as the targets of a single-output regression
loss: the model is asked to put class 2 "between" classes 1 and 3, an order and a distance the
classes do not have; the optimum for an ambiguous input is the mean of the ids (a class of neither),
and the predictions are rounded afterwards to get a class. A ``K``-way classifier (``K`` logits and
cross-entropy) is the fix. Ordinal targets regressed on purpose, counts and integer-valued real
quantities (years, prices) look the same to the loss, so the evidence decides the severity.

Evidence, on sampled training steps: a ``mse_loss`` / ``l1_loss`` / ``smooth_l1_loss`` /
``huber_loss`` whose input is one output per sample (``(N,)`` or ``(N, 1)``, ``N >= 2``) and whose
targets are whole numbers, in >= ``MIN_CALLS`` calls (none with fractional targets); over all of them
the targets take ``3..MAX_IDS`` distinct values forming a contiguous run that starts at 0 or 1.
* warning when the ids look nominal (start at 0, ``K <= MAX_NOMINAL``, every class between
  ``0.5/K`` and ``2/K`` of the targets, >= ``MIN_TARGETS`` targets seen) or when ids from 0 are
  compared (``eq``/``ne``) with a rounded (``round``/``long``/``int``/``floor``) one-output float
  prediction of the same size: the script treats the outputs as classes;
* ``info`` otherwise (ratings 1..5, rounded or not, and skewed small counts: maybe meant).
Many values, gaps, fractional targets, two values and multi-output regression stay quiet.
"""

from __future__ import annotations

from collections import Counter
from typing import Any, Iterable

import torch

from nndoctor.checks import Check, register
from nndoctor.findings import Finding, Severity
from nndoctor.monitor.events import LossCall, OpCall, RunEnd
from nndoctor.monitor.functions import user_site
from nndoctor.monitor.marks import TensorMarks

__all__ = ["ClassIdsRegressed", "MAX_IDS", "judge_ids"]

REGRESSION = frozenset({"mse_loss", "l1_loss", "smooth_l1_loss", "huber_loss"})
MAX_IDS = 20
MAX_NOMINAL = 12
MIN_CALLS = 2
MIN_TARGETS = 64
_ROUND = frozenset({"round", "long", "int", "floor"})
_CARRY = frozenset({"squeeze", "view", "flatten", "reshape", "clamp", "cpu", "detach", "long", "int", "to"})
_CMP = frozenset({"eq", "ne"})


def _whole(t: torch.Tensor) -> bool:
    if not t.is_floating_point():
        return t.dtype != torch.bool and not t.is_complex()
    return bool(torch.isfinite(t).all()) and bool((t == t.round()).all())


def judge_ids(counts: Counter[int]) -> str | None:
    """``"nominal"``, ``"small"`` (few contiguous ids, maybe ordinal) or None (no class ids)."""
    k = len(counts)
    if not 3 <= k <= MAX_IDS:
        return None
    low = min(counts)
    if low not in (0, 1) or max(counts) != low + k - 1:
        return None  # not a contiguous run from 0 or 1: years, prices, sparse values
    total = sum(counts.values())
    shares = [c / total for c in counts.values()]
    if low == 0 and k <= MAX_NOMINAL and total >= MIN_TARGETS and min(shares) >= 0.5 / k \
            and max(shares) <= 2.0 / k:
        return "nominal"
    return "small"


def _one_output(t: torch.Tensor) -> bool:
    return t.is_floating_point() and t.dim() in (1, 2) and t.shape[0] >= 2 and (t.dim() == 1 or t.shape[1] == 1)


@register
class ClassIdsRegressed(Check):
    """Integer class ids as the targets of a one-output regression loss."""

    code = "loss-input.class-ids-regressed"
    needs = ("loss", "op", "end")
    sampled_only = frozenset({"loss"})
    ops = _ROUND | _CARRY | _CMP
    eval_ops = _ROUND | _CMP | {"squeeze", "clamp", "cpu"}  # (views are everywhere in an evaluation forward)

    def __init__(self, state: Any) -> None:
        super().__init__(state)
        self._counts: Counter[int] = Counter()
        self._calls = 0
        self._fractional = False
        self._first: dict[str, Any] | None = None
        self._rounded: TensorMarks[str] = TensorMarks(256)
        self._compared: dict[str, Any] | None = None

    def check(self, event: Any) -> Iterable[Finding]:
        if event.kind == "op":
            if self._compared is None and not self._fractional:
                self._on_op(event)
        elif event.kind == "loss":
            self._on_loss(event)
        elif event.kind == "end":
            return self._on_end(event)
        return ()

    def _on_loss(self, event: LossCall) -> None:
        t = event.target
        if event.name not in REGRESSION or not event.grad_enabled or t is None or self._fractional:
            return
        if not _one_output(event.input) or t.numel() != event.input.shape[0]:
            return
        t = t.detach()
        if not _whole(t):
            self._fractional = True  # real-valued targets: no class ids
            return
        values, counts = torch.unique(t, return_counts=True)
        if values.numel() > MAX_IDS or len(self._counts) > MAX_IDS:
            self._counts[10**9] += 1  # (too many values: marked, never judged as ids)
            return
        for v, c in zip(values.tolist(), counts.tolist()):
            self._counts[int(v)] += int(c)
        self._calls += 1
        if self._first is None:
            self._first = {"loss": event.name, "site": event.site, "step": event.step,
                           "output_shape": tuple(event.input.shape)}

    def _on_op(self, event: OpCall) -> None:
        src = event.args[0] if event.args else None
        if not isinstance(src, torch.Tensor) or not isinstance(event.result, torch.Tensor):
            return
        name = event.name
        if name in _CMP:
            other = event.args[1] if len(event.args) > 1 else None
            for a, b in ((src, other), (other, src)):
                how = self._rounded.get(a)
                if how is not None and isinstance(b, torch.Tensor) and b.numel() == a.numel() \
                        and self._rounded.get(b) is None and _whole(b.detach()):
                    self._compared = {"how": how, "site": user_site()}
                    return
            return
        how = self._rounded.get(src)
        if how is not None:
            if name in _CARRY or name in _ROUND:
                self._rounded.put(event.result, how)
        elif name in _ROUND and _one_output(src) and not _whole(src.detach()):  # (predictions, not labels)
            self._rounded.put(event.result, f"{name}() of the {tuple(src.shape)} predictions")

    def _on_end(self, event: RunEnd) -> list[Finding]:
        if self._fractional or self._calls < MIN_CALLS or self._first is None:
            return []
        kind = judge_ids(self._counts)
        if kind is None:
            return []
        first = self._first
        ids = sorted(self._counts)
        k = len(ids)
        total = sum(self._counts.values())
        # ids from 1 are the convention of ratings (1..5 stars): rounding them is common practice there
        strong = kind == "nominal" or (self._compared is not None and ids[0] == 0)
        why = []
        if kind == "nominal":
            why.append(f"the {k} ids {ids[0]}..{ids[-1]} are evenly spread like nominal classes")
        if self._compared is not None:
            why.append(f"the script compares {self._compared['how']} with the targets"
                       f"{' at ' + self._compared['site'] if self._compared['site'] else ''}, as class predictions")
        evidence = {**first, "ids": ids, "shares": {v: round(self._counts[v] / total, 3) for v in ids},
                    "calls": self._calls, "targets": total, "kind": kind,
                    "compared": self._compared}
        message = (f"the targets of {first['loss']} (one output per sample, {first['output_shape']}) are {k} "
                   f"integer ids {ids[0]}..{ids[-1]} in {self._calls} sampled steps: class ids regressed as numbers "
                   f"impose an order and distances the classes may not have")
        if why:
            message += "; " + "; ".join(why)
        message += (f": use a classifier with {k} outputs and cross_entropy" if strong else
                    f"; if they are classes, use a classifier with {k} outputs and cross_entropy (ordinal ratings "
                    "or counts regressed on purpose are fine)")
        return [self.finding(message, evidence, location=first["site"], step=first["step"],
                             severity=None if strong else Severity.INFO)]
