"""preprocessing.sentinel-values: a missing-value code left in a feature squashes its real values.

A table whose missing readings are stored as 99999 (or -999...) and then min-max scaled or
standardised as is: the code becomes the column's extreme, and every real value of the column is
squeezed into a sliver of its range (after min-max the bulk sits in [0, 1e-4]). The network sees
an almost constant feature plus a rare huge spike.

:class:`SentinelValues` keeps a bounded sample of the rows of tabular model inputs ((N, F) tables
and (N, L, F) sequences of features; images are left out), from sampled training forwards and
from evaluation forwards, and judges each column at the end of the run:

* a **sentinel**: the column's minimum or maximum is one exact value repeated in at least
  ``MIN_REPEATS`` sampled rows (and at most 30% of them), and the other values' 1st-99th
  percentile band spans less than ``SQUASH`` (1%) of the column's range: warning;
* the same squash without a repeated value (a few extreme outliers, or a genuinely heavy tail):
  info.

Heavy-tailed but genuine features (log-normal income: the bulk spans far more than 1%), one-hot and
binary columns, sparse counts (fewer than ``MIN_DISTINCT`` distinct values outside the extreme, or
a constant bulk), standardised data and images stay quiet.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from nndoctor.checks import Check, register
from nndoctor.debug.preprocessing import fmt, looks_like_image
from nndoctor.findings import Finding, Severity
from nndoctor.monitor.events import ModelInput, RunEnd

__all__ = ["SentinelValues", "squashed_columns"]

MAX_ROWS = 4096  # sampled rows kept per model input
MAX_VALUES = 1_000_000  # ... and values (float32): at most 4 MB per model
MAX_COLUMNS = 512
MIN_ROWS = 100  # rows needed before a column is judged
MIN_REPEATS = 3  # sampled rows holding the exact extreme value
MAX_SHARE = 0.3  # a value held by more rows is a mode of the column (zero-inflated), not a code
SQUASH = 0.01  # bulk width / column range below which the real values are squashed
MIN_DISTINCT = 10  # distinct values the rest of the column needs (a continuous feature)


@dataclass
class _Sample:
    name: str
    chunks: list[np.ndarray] = field(default_factory=list)
    rows: int = 0
    cols: int = 0


def _column(v: np.ndarray) -> dict[str, Any] | None:
    """The sentinel / squash verdict of one column's sampled values (None: nothing to say)."""
    n = v.size
    lo, hi = float(v.min()), float(v.max())
    span = hi - lo
    if span <= 0 or not np.isfinite(span):
        return None
    best: dict[str, Any] | None = None
    for end, value in (("max", hi), ("min", lo)):
        hits = int(np.count_nonzero(v == value))
        if hits < MIN_REPEATS or hits > MAX_SHARE * n:
            continue
        rest = v[v != value]
        if np.unique(rest).size < MIN_DISTINCT:
            continue
        q1, q99 = (float(q) for q in np.quantile(rest, [0.01, 0.99]))
        width = q99 - q1
        if width <= 0 or width >= SQUASH * span:
            continue
        verdict = {"value": value, "end": end, "repeats": hits, "share": hits / n, "bulk": (q1, q99),
                   "bulk_fraction": width / span, "sentinel": True}
        if best is None or verdict["bulk_fraction"] < best["bulk_fraction"]:
            best = verdict
    if best is not None:
        return best
    if np.unique(v).size < MIN_DISTINCT:
        return None
    q1, q99 = (float(q) for q in np.quantile(v, [0.01, 0.99]))
    width = q99 - q1
    if 0 < width < SQUASH * span:
        far = hi if hi - q99 >= q1 - lo else lo
        return {"value": far, "end": "max" if far == hi else "min", "repeats": int(np.count_nonzero(v == far)),
                "share": float(np.count_nonzero(v == far)) / n, "bulk": (q1, q99), "bulk_fraction": width / span,
                "sentinel": False}
    return None


def _plain_columns(table: np.ndarray) -> np.ndarray:
    """Per column of a (rows, features) sample: True where :func:`_column` certainly says nothing,
    read for all columns at once (a few passes over the table instead of a sort and a quantile per
    column): every value finite, neither extreme repeated ``MIN_REPEATS`` times (no candidate code),
    and the 1st-99th percentile band at least ``SQUASH`` of the range (no squash; the margin leaves
    rounding no say). The other columns get the full per-column test."""
    finite = np.isfinite(table).all(0)
    lo, hi = table.min(0), table.max(0)
    repeated = ((table == hi).sum(0) >= MIN_REPEATS) | ((table == lo).sum(0) >= MIN_REPEATS)
    with np.errstate(invalid="ignore", over="ignore"):
        q1, q99 = np.quantile(table, [0.01, 0.99], axis=0)
        wide = (q99 - q1) >= SQUASH * (hi - lo) * (1 + 1e-6)
    return finite & ~repeated & wide & np.isfinite(hi - lo)


def squashed_columns(table: np.ndarray) -> dict[int, dict[str, Any]]:
    """Column index -> verdict for the columns of a (rows, features) sample whose real values are
    squashed by a repeated extreme value (``sentinel`` True) or by extreme outliers."""
    out: dict[int, dict[str, Any]] = {}
    if table.ndim != 2 or table.shape[0] < MIN_ROWS:
        return out
    table = table[:, :MAX_COLUMNS]
    plain = _plain_columns(table)
    for j in range(table.shape[1]):
        if plain[j]:
            continue
        v = table[:, j]
        v = v[np.isfinite(v)]
        if v.size >= MIN_ROWS:
            verdict = _column(v)
            if verdict is not None:
                out[j] = verdict
    return out


@register
class SentinelValues(Check):
    """A repeated extreme value (a missing-value code) that squashes a feature's real values."""

    code = "preprocessing.sentinel-values"
    needs = ("model_input", "eval_input", "end")
    sampled_only = frozenset({"model_input"})

    def __init__(self, state: Any) -> None:
        super().__init__(state)
        self._samples: dict[int, _Sample] = {}

    def check(self, event: ModelInput | RunEnd) -> Iterable[Finding]:
        if isinstance(event, RunEnd):
            return self._judge()
        self._collect(event)
        return ()

    def _collect(self, event: ModelInput) -> None:
        x = next((a for a in list(event.args) + list(event.kwargs.values()) if isinstance(a, torch.Tensor)), None)
        if x is None or not x.is_floating_point() or x.is_complex() or x.grad_fn is not None \
                or x.dim() not in (2, 3) or x.shape[0] < 1 or not 2 <= x.shape[-1] <= MAX_COLUMNS \
                or looks_like_image(x):
            return
        s = self._samples.get(id(event.model))
        if s is None:
            if len(self._samples) >= 8:
                return
            s = self._samples[id(event.model)] = _Sample(name=event.name, cols=int(x.shape[-1]))
        cap = min(MAX_ROWS, MAX_VALUES // s.cols)
        if s.rows >= cap or s.cols != x.shape[-1]:
            return
        rows = x.detach().reshape(-1, x.shape[-1])[: cap - s.rows]
        s.chunks.append(rows.float().cpu().numpy())
        s.rows += rows.shape[0]

    def _judge(self) -> list[Finding]:
        found: list[Finding] = []
        for s in self._samples.values():
            if s.rows < MIN_ROWS:
                continue
            cols = squashed_columns(np.concatenate(s.chunks))
            if not cols:
                continue
            sentinel = {j: c for j, c in cols.items() if c["sentinel"]}
            pick = sentinel or cols
            order = sorted(pick, key=lambda j: pick[j]["bulk_fraction"])
            j0 = order[0]
            c0 = pick[j0]
            names = ", ".join(map(str, order[:8])) + (" ..." if len(order) > 8 else "")
            ev = {"model": s.name, "columns": order[:32], "rows_sampled": s.rows, "features": s.cols,
                  "value": c0["value"], "repeats": c0["repeats"], "share": round(c0["share"], 4),
                  "bulk_low": c0["bulk"][0], "bulk_high": c0["bulk"][1],
                  "bulk_fraction": float(f"{c0['bulk_fraction']:.3g}"),
                  "values": {j: pick[j]["value"] for j in order[:8]}}
            bulk = f"[{fmt(c0['bulk'][0])}, {fmt(c0['bulk'][1])}]"
            if sentinel:
                msg = (f"column{'s' if len(order) > 1 else ''} {names} of {s.name}'s input hold a repeated extreme "
                       f"value (column {j0}: {fmt(c0['value'])} in {c0['repeats']} of {s.rows} sampled rows, its "
                       f"{c0['end']}) far outside the other values, which occupy only {bulk}, "
                       f"{100 * c0['bulk_fraction']:.2g}% of the column's range: a missing-value code (99999, -999) "
                       f"left in the table squashes the real values into a sliver before the network sees them")
                severity = Severity.WARNING
            else:
                msg = (f"column{'s' if len(order) > 1 else ''} {names} of {s.name}'s input have extreme outliers: "
                       f"98% of column {j0}'s sampled values lie in {bulk}, {100 * c0['bulk_fraction']:.2g}% of its "
                       f"range (its {c0['end']} is {fmt(c0['value'])}); scaling by the range squashes the real values")
                severity = Severity.INFO
            found.append(self.finding(msg, ev, location=s.name, severity=severity))
        return found
