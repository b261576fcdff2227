"""Class imbalance: the ratio of the largest to the smallest class, with per-class error."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from nndoctor import catalogue
from nndoctor.findings import Finding

__all__ = ["Balance", "class_balance"]


@dataclass
class Balance:
    counts: dict[int, int]
    ratio: float
    per_class_error: dict[int, float] | None = None

    def finding(self, *, max_ratio: float = 10.0) -> Finding | None:
        if self.ratio < max_ratio:
            return None
        order = sorted(self.counts, key=lambda c: self.counts[c])
        minority = order[: max(1, len(order) // 5)]
        evidence: dict[str, object] = {"ratio": round(self.ratio, 2), "counts": self.counts,
                                       "minority": ", ".join(str(c) for c in minority)}
        msg = (f"classes are imbalanced {self.ratio:.0f}:1 (largest class {order[-1]}: {self.counts[order[-1]]} "
               f"examples, smallest {order[0]}: {self.counts[order[0]]})")
        if self.per_class_error:
            evidence["per_class_error"] = {c: round(e, 4) for c, e in self.per_class_error.items()}
            minority_err = np.mean([self.per_class_error.get(c, 0.0) for c in minority])
            majority_err = np.mean([self.per_class_error.get(c, 0.0) for c in order[len(minority):]])
            msg += f"; minority-class error {minority_err:.2f} vs {majority_err:.2f} for the others"
        return catalogue.finding("data.class-imbalance", message=msg, evidence=evidence,
                       location="train")


def class_balance(labels: np.ndarray, errors: np.ndarray | None = None) -> Balance:
    """Counts per class, max/min ratio, and per-class error when per-example ``errors`` are given."""
    y = np.asarray(labels).astype(np.int64).reshape(-1)
    if y.size == 0:
        raise ValueError("no labels given")
    classes, counts = np.unique(y, return_counts=True)
    ratio = float(counts.max() / counts.min())
    per_class = None
    if errors is not None:
        e = np.asarray(errors, dtype=np.float64).reshape(-1)
        if e.shape != y.shape:
            raise ValueError(f"errors must match labels, got {e.shape} vs {y.shape}")
        per_class = {int(c): float(e[y == c].mean()) for c in classes}
    return Balance(counts={int(c): int(n) for c, n in zip(classes, counts)}, ratio=ratio,
                   per_class_error=per_class)
