"""Train/evaluation leakage: exact and near-duplicate inputs shared between splits.

Exact duplicates are found by hashing each example's bytes; near duplicates by hashing
a coarse signature (per-example standardised, then sign of a few random projections:
SimHash) and comparing cosine similarity only within a bucket. Both are linear in the
number of examples, so a million examples cost a few seconds, never a quadratic scan.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np

from nndoctor.checks import FIXES, fixes_for
from nndoctor.findings import Finding, Severity, Step

__all__ = ["Leakage", "find_duplicates", "hash_rows"]

FIXES.setdefault("data.train-test-leakage", (
    "Remove the {n_shared} {split} examples that also occur in the training set (indices in the evidence), "
    "or split by a group key (user, patient, source file) before shuffling.",
    "Re-measure the {split} error after de-duplication: the current figure is optimistic.",
))


def hash_rows(x: np.ndarray, decimals: int = 6) -> list[bytes]:
    """A digest per example of its values rounded to ``decimals``."""
    arr = np.ascontiguousarray(np.round(np.asarray(x, dtype=np.float64).reshape(len(x), -1), decimals))
    arr[arr == 0] = 0.0  # -0.0 and 0.0 hash alike
    return [hashlib.blake2b(row.tobytes(), digest_size=16).digest() for row in arr]


@dataclass
class Leakage:
    split: str
    exact: list[tuple[int, int]] = field(default_factory=list)  # (other index, train index)
    near: list[tuple[int, int, float]] = field(default_factory=list)
    n_other: int = 0

    @property
    def shared(self) -> set[int]:
        return {i for i, _ in self.exact} | {i for i, _, _ in self.near}

    def finding(self) -> Finding | None:
        n = len(self.shared)
        if n == 0:
            return None
        share = n / max(self.n_other, 1)
        evidence = {"split": self.split, "n_shared": n, "share": round(share, 4),
                    "exact": len(self.exact), "near": len(self.near),
                    "examples": [[int(a), int(b)] for a, b in self.exact[:10]]
                    + [[int(a), int(b)] for a, b, _ in self.near[:10 - min(10, len(self.exact))]]}
        severity = Severity.WARNING if share >= 0.01 or n >= 10 else Severity.INFO
        return Finding(code="data.train-test-leakage", severity=severity, step=Step.EVALUATE,
                       message=(f"{n} of {self.n_other} {self.split} examples ({share:.1%}) also occur in the "
                                f"training set ({len(self.exact)} exact, {len(self.near)} near duplicates): "
                                f"the {self.split} error is optimistic"),
                       evidence=evidence, fixes=fixes_for("data.train-test-leakage", evidence),
                       location=self.split)


def find_duplicates(
    train: np.ndarray, other: np.ndarray, *, split: str = "test", near: bool = True,
    threshold: float = 0.995, bits: int = 16, seed: int = 0,
) -> Leakage:
    """Examples of ``other`` that duplicate (exactly or nearly) an example of ``train``."""
    train = np.asarray(train)
    other = np.asarray(other)
    if len(train) == 0 or len(other) == 0:
        return Leakage(split=split, n_other=len(other))
    if train.reshape(len(train), -1).shape[1] != other.reshape(len(other), -1).shape[1]:
        raise ValueError(f"train and {split} examples differ in size: {train.shape[1:]} vs {other.shape[1:]}")
    result = Leakage(split=split, n_other=len(other))
    index: dict[bytes, int] = {}
    for i, h in enumerate(hash_rows(train)):
        index.setdefault(h, i)
    exact_other = set()
    for i, h in enumerate(hash_rows(other)):
        j = index.get(h)
        if j is not None:
            result.exact.append((i, j))
            exact_other.add(i)
    if not near:
        return result
    a = _standardise(train)
    b = _standardise(other)
    rng = np.random.default_rng(seed)
    planes = rng.standard_normal((a.shape[1], bits)).astype(np.float32)
    weights = (1 << np.arange(bits)).astype(np.int64)
    key_a = ((a @ planes) > 0).astype(np.int64) @ weights
    key_b = ((b @ planes) > 0).astype(np.int64) @ weights
    buckets: dict[int, list[int]] = {}
    for i, k in enumerate(key_a.tolist()):
        buckets.setdefault(k, []).append(i)
    for i, k in enumerate(key_b.tolist()):
        if i in exact_other:
            continue
        cands = buckets.get(k)
        if not cands:
            continue
        sims = a[cands[:512]] @ b[i]
        best = int(np.argmax(sims))
        if sims[best] >= threshold:
            result.near.append((i, cands[best], float(sims[best])))
    return result


def _standardise(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32).reshape(len(x), -1)
    x = x - x.mean(axis=1, keepdims=True)
    norm = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.maximum(norm, 1e-8)
