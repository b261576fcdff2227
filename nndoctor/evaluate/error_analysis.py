"""Error analysis: error per class (or slice) on train-val and test-val.

Rows are sorted by their contribution to the total test-val error; a slice whose
test-val error is much worse than its train-val error is distribution shift and gets
priority (the field guide's pedestrian table: night scenes 0.1% vs 1%).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from nndoctor import catalogue
from nndoctor.findings import Finding

__all__ = ["SliceRow", "error_table", "slice_findings"]


@dataclass(frozen=True)
class SliceRow:
    slice: str
    n_train_val: int
    n_test_val: int
    train_val_error: float | None
    test_val_error: float | None
    contribution: float  # share of all test-val (or train-val) errors that fall in this slice
    shifted: bool

    def to_dict(self) -> dict[str, object]:
        return dict(self.__dict__)


def _per_slice(errors: np.ndarray | None, slices: np.ndarray | None) -> dict[str, tuple[int, float]]:
    if errors is None or slices is None:
        return {}
    e = np.asarray(errors, dtype=np.float64).reshape(-1)
    s = np.asarray(slices).reshape(-1)
    if e.shape != s.shape:
        raise ValueError(f"errors and slices differ in length: {e.shape} vs {s.shape}")
    return {str(k): (int((s == k).sum()), float(e[s == k].mean())) for k in np.unique(s)}


def _z(e1: float, n1: int, e2: float, n2: int) -> float:
    """Two-proportion z statistic of e2 > e1 (a gap that per-slice noise would not explain)."""
    pooled = (e1 * n1 + e2 * n2) / (n1 + n2)
    se = (max(pooled * (1 - pooled), 1e-9) * (1 / n1 + 1 / n2)) ** 0.5
    return (e2 - e1) / se


def error_table(
    train_val_errors: Sequence[float] | np.ndarray | None,
    train_val_slices: Sequence[object] | np.ndarray | None,
    test_val_errors: Sequence[float] | np.ndarray | None = None,
    test_val_slices: Sequence[object] | np.ndarray | None = None,
    *,
    ratio: float = 2.0,
    min_gap: float = 0.03,
    min_count: int = 10,
    z_min: float = 2.58,
) -> list[SliceRow]:
    """Per-slice error on train-val and test-val, sorted by contribution to the error."""
    tv = _per_slice(None if train_val_errors is None else np.asarray(train_val_errors),
                    None if train_val_slices is None else np.asarray(train_val_slices))
    te = _per_slice(None if test_val_errors is None else np.asarray(test_val_errors),
                    None if test_val_slices is None else np.asarray(test_val_slices))
    main = te or tv
    total = sum(n * e for n, e in main.values()) or 1.0
    rows = []
    for key in sorted(set(tv) | set(te)):
        n_tv, e_tv = tv.get(key, (0, None))
        n_te, e_te = te.get(key, (0, None))
        n_main, e_main = main.get(key, (0, 0.0))
        shifted = bool(
            e_tv is not None and e_te is not None and n_te >= min_count and n_tv >= min_count
            and e_te - e_tv >= min_gap and e_te >= ratio * max(e_tv, 1e-3)
            and _z(e_tv, n_tv, e_te, n_te) >= z_min
        )
        rows.append(SliceRow(slice=key, n_train_val=n_tv, n_test_val=n_te, train_val_error=e_tv,
                             test_val_error=e_te, contribution=(n_main * (e_main or 0.0)) / total,
                             shifted=shifted))
    rows.sort(key=lambda r: (not r.shifted, -r.contribution))
    return rows


def slice_findings(rows: Sequence[SliceRow]) -> list[Finding]:
    """A finding per shifted slice; none when most slices shift (the global shift term covers it)."""
    out: list[Finding] = []
    if sum(r.shifted for r in rows) > len(rows) / 2:
        return out
    for r in rows:
        if not r.shifted:
            continue
        evidence = {"slice": r.slice, "train_val_error": r.train_val_error, "test_val_error": r.test_val_error,
                    "n_test_val": r.n_test_val, "contribution": round(r.contribution, 4)}
        out.append(catalogue.finding(
            "fit.slice-worse-on-test-val",
            message=(f"slice {r.slice}: test-val error {r.test_val_error:.3f} vs train-val {r.train_val_error:.3f} "
                     f"({r.contribution:.0%} of test-val errors): distribution shift, high priority"),
            evidence=evidence, location=f"slice {r.slice}"))
    return out
