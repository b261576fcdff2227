"""Class weights that favour the frequent classes (computed from frequency, not its inverse).

Re-weighting an imbalanced classification gives the rare classes the larger weights: ``weight =
total / counts`` (or ``1 / counts``, ``sqrt``, "effective number" variants). Writing ``counts /
total`` instead, or passing ``pos_weight = n_pos / n_neg`` where ``n_neg / n_pos`` was meant, makes
the weighting push the model further toward the majority class than no weighting at all: the rare
classes are never predicted, and the loss looks fine.

``data.class-weights-inverted`` reads the ``weight=`` of ``cross_entropy`` / ``nll_loss`` (module
losses pass theirs) and the ``pos_weight=`` of ``binary_cross_entropy_with_logits`` on sampled
training steps, counts the classes of the same calls' targets, and judges at the end of the run:

* class weights: at least 2 classes present, the most frequent at least ``MIN_IMBALANCE`` times the
  rarest, the weights of the present classes positive and rising with frequency: slope of log weight
  on log count at least ``MIN_SLOPE`` (1 for weights proportional to the counts, -1 for the usual
  inverse), their correlation at least ``MIN_CORRELATION`` with 3 or more classes, and the most
  frequent class weighted at least ``MIN_WEIGHT_RATIO`` times the rarest;
* ``pos_weight``: per label column with 0/1 targets, the positives at most ``MAX_POS_SHARE`` of the
  rows and ``pos_weight`` within a factor 2 of ``n_pos / n_neg`` (the inverse of the usual
  ``n_neg / n_pos``) and below 1 / ``MIN_WEIGHT_RATIO``.

Weights that fall with frequency, equal weights, per-sample ``weight=`` of the binary losses and
weights on balanced data are quiet.
"""

from __future__ import annotations

import math
from typing import Any, Iterable

import numpy as np
import torch

from nndoctor.checks import Check, register
from nndoctor.findings import Finding
from nndoctor.monitor.events import LossCall, RunEnd
from nndoctor.monitor.tensors import local

__all__ = ["ClassWeightsInverted"]

CLASS_LOSSES = frozenset({"cross_entropy", "nll_loss"})
MIN_IMBALANCE = 3.0
MIN_SLOPE = 0.5
MIN_CORRELATION = 0.9
MIN_WEIGHT_RATIO = 2.0
MAX_POS_SHARE = 0.25
MIN_TARGETS = 64
MAX_CLASSES = 10_000


def _vector(t: Any) -> np.ndarray | None:
    if not isinstance(t, torch.Tensor) or not t.is_floating_point() or t.dim() > 1 or t.numel() > MAX_CLASSES:
        return None
    v = local(t).detach().double().reshape(-1).cpu().numpy()
    return v if v.size and np.all(np.isfinite(v)) else None


@register
class ClassWeightsInverted(Check):
    """Loss class weights that grow with class frequency on imbalanced data."""

    code = "data.class-weights-inverted"
    needs = ("loss", "end")

    def __init__(self, state: Any) -> None:
        super().__init__(state)
        self._weights: dict[str, np.ndarray] = {}  # per loss site: the class weights first seen
        self._counts: dict[str, np.ndarray] = {}
        self._pos: dict[str, tuple[np.ndarray, np.ndarray, int]] = {}  # site: (pos_weight, positives, rows)

    def check(self, event: LossCall | RunEnd) -> Iterable[Finding]:
        if isinstance(event, RunEnd):
            return self._judge()
        if not event.grad_enabled or event.target is None:
            return ()
        if event.name in CLASS_LOSSES:
            self._on_class_loss(event)
        elif event.name == "binary_cross_entropy_with_logits":
            self._on_pos_weight(event)
        return ()

    def _on_class_loss(self, event: LossCall) -> None:
        site = event.site or event.name
        w = self._weights.get(site)
        if w is None:
            w = _vector(event.kwargs.get("weight"))
            if w is None or len(self._weights) >= 16:
                return
            self._weights[site] = w
        target, inp = event.target, event.input
        if target is None or target.is_floating_point() or inp.dim() < 2 or target.dim() != inp.dim() - 1:
            return
        y = local(target).detach().reshape(-1).cpu().numpy().astype(np.int64)
        y = y[(y >= 0) & (y < w.size)]
        counts = np.bincount(y, minlength=w.size)[: w.size]
        self._counts[site] = counts if site not in self._counts else self._counts[site] + counts

    def _on_pos_weight(self, event: LossCall) -> None:
        site = event.site or event.name
        pw = _vector(event.kwargs.get("pos_weight"))
        target = event.target
        if pw is None or target is None or target.shape != event.input.shape or target.dim() > 2:
            return
        t = local(target).detach().double().cpu().numpy()
        if not np.all((t == 0) | (t == 1)):
            return
        t = t.reshape(t.shape[0], -1) if t.ndim == 2 else t.reshape(-1, 1)
        if pw.size not in (1, t.shape[1]):
            return
        old = self._pos.get(site)
        if old is None:
            if len(self._pos) >= 16:
                return
            self._pos[site] = (pw, t.sum(0), t.shape[0])
        else:
            self._pos[site] = (old[0], old[1] + t.sum(0), old[2] + t.shape[0])

    def _judge(self) -> list[Finding]:
        out: list[Finding] = []
        for site, w in self._weights.items():
            counts = self._counts.get(site)
            if counts is None or counts.sum() < MIN_TARGETS:
                continue
            present = (counts > 0) & (w > 0)
            if present.sum() < 2:
                continue
            c, wp = counts[present].astype(np.float64), w[present]
            imbalance = c.max() / c.min()
            if imbalance < MIN_IMBALANCE:
                continue
            lc, lw = np.log(c), np.log(wp)
            if np.ptp(lw) == 0:
                continue
            slope = float(np.polyfit(lc, lw, 1)[0])
            corr = 1.0 if present.sum() == 2 else float(np.corrcoef(lc, lw)[0, 1])
            ratio = float(wp[np.argmax(c)] / wp[np.argmin(c)])
            if slope < MIN_SLOPE or corr < MIN_CORRELATION or ratio < MIN_WEIGHT_RATIO:
                continue
            big, small = int(np.flatnonzero(present)[np.argmax(c)]), int(np.flatnonzero(present)[np.argmin(c)])
            ev = {"site": site, "weights": [round(float(v), 4) for v in w[:20]],
                  "counts": [int(v) for v in counts[:20]], "imbalance": round(float(imbalance), 2),
                  "slope": round(slope, 3), "correlation": round(corr, 3), "weight_ratio": round(ratio, 2),
                  "frequent_class": big, "rare_class": small, "kind": "weight"}
            out.append(self.finding(
                f"the class weights at {site} grow with class frequency: class {big} ({int(c.max())} of "
                f"{int(counts.sum())} sampled targets) weighs {ratio:.3g}x class {small} ({int(c.min())}), "
                f"log-log slope {slope:.2f} (weights from the inverse frequency have slope -1): the weighting "
                f"pushes the model further toward the frequent classes instead of helping the rare ones",
                ev, location=site))
        for site, (pw, pos, rows) in self._pos.items():
            if rows < MIN_TARGETS:
                continue
            pws = np.broadcast_to(pw, pos.shape)
            for j in range(pos.size):
                p = pos[j] / rows
                if not 0 < p <= MAX_POS_SHARE or not 0 < pws[j] <= 1.0 / MIN_WEIGHT_RATIO:
                    continue
                odds = p / (1 - p)
                if abs(math.log(pws[j] / odds)) > math.log(2.0):
                    continue
                ev = {"site": site, "pos_weight": round(float(pws[j]), 4), "positive_share": round(float(p), 4),
                      "inverse_expected": round(float(1 / odds), 3), "column": j, "kind": "pos_weight",
                      "weights": [round(float(v), 4) for v in pw[:20]], "counts": [int(v) for v in pos[:20]]}
                out.append(self.finding(
                    f"pos_weight={pws[j]:.3g} at {site}{f' (label {j})' if pos.size > 1 else ''} is n_pos / n_neg "
                    f"({p:.1%} of {rows} sampled targets are positive): it shrinks the rare positives' loss "
                    f"instead of raising it (n_neg / n_pos = {1 / odds:.3g} was likely meant)",
                    ev, location=site))
                break
        return out
