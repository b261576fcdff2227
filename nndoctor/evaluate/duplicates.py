"""Train/evaluation leakage: exact and near-duplicate inputs shared between splits.

Exact duplicates are found by hashing each example's bytes. Near duplicates: features are
standardised with the training set's statistics, candidates share a SimHash bucket (signs of
a few random projections, several tables), and a candidate counts only when its distance is
a small fraction of the typical nearest-neighbour distance between training examples, and
smaller than chance allows for data of that size and intrinsic dimension (random continuous
data in few dimensions has close pairs everywhere). Both are linear in the number of
examples (the distance scale comes from a fixed-size sample), never a quadratic scan.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field

import numpy as np

from nndoctor import catalogue
from nndoctor.findings import Finding, Severity

__all__ = ["Leakage", "find_duplicates", "hash_rows", "near_threshold"]


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
        return catalogue.finding("data.train-test-leakage", severity=severity,
                       message=(f"{n} of {self.n_other} {self.split} examples ({share:.1%}) also occur in the "
                                f"training set ({len(self.exact)} exact, {len(self.near)} near duplicates): "
                                f"the {self.split} error is optimistic"),
                       evidence=evidence,
                       location=self.split)


def find_duplicates(
    train: np.ndarray, other: np.ndarray, *, split: str = "test", near: bool = True,
    ratio: float = 0.05, bits: int = 12, tables: int = 4, seed: int = 0,
) -> Leakage:
    """Examples of ``other`` that duplicate (exactly or nearly) an example of ``train``.

    A near duplicate lies closer to a training example than ``ratio`` times the typical
    nearest-neighbour distance between training examples, and closer than chance allows
    for data of this size and (estimated) dimension; see :func:`near_threshold`.
    """
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
    if not near or len(train) < 3:
        return result
    a, b = _standardise(train, other)
    rng = np.random.default_rng(seed)
    typical, limit = near_threshold(a, len(b), ratio=ratio, rng=rng)
    if limit <= 0:
        return result
    todo = np.array([i for i in range(len(b)) if i not in exact_other], dtype=np.int64)
    best_d = np.full(len(b), np.inf)
    best_j = np.full(len(b), -1, dtype=np.int64)
    sq_a = np.einsum("ij,ij->i", a, a)
    for _ in range(tables):  # SimHash buckets give the candidates; a near duplicate shares a bucket
        planes = rng.standard_normal((a.shape[1], bits)).astype(np.float32)
        weights = (1 << np.arange(bits)).astype(np.int64)
        key_a = ((a @ planes) > 0).astype(np.int64) @ weights
        key_b = ((b[todo] @ planes) > 0).astype(np.int64) @ weights
        order = np.argsort(key_a, kind="stable")
        sorted_keys = key_a[order]
        for key in np.unique(key_b):
            lo, hi = np.searchsorted(sorted_keys, key), np.searchsorted(sorted_keys, key, side="right")
            if lo == hi:
                continue
            cands = order[lo:hi]
            if len(cands) > 4096:
                cands = rng.choice(cands, 4096, replace=False)
            rows = todo[key_b == key]
            for start in range(0, len(rows), 256):
                chunk = rows[start:start + 256]
                d2 = sq_a[cands][None, :] - 2.0 * (b[chunk] @ a[cands].T) + np.einsum("ij,ij->i", b[chunk],
                                                                                      b[chunk])[:, None]
                k = np.argmin(d2, axis=1)
                j = cands[k]
                d = np.linalg.norm(b[chunk] - a[j], axis=1)  # exact, no cancellation
                better = d < best_d[chunk]
                best_d[chunk[better]] = d[better]
                best_j[chunk[better]] = j[better]
    for i in np.flatnonzero(best_d < limit).tolist():
        result.near.append((int(i), int(best_j[i]), float(best_d[i] / typical)))
    return result


def near_threshold(a: np.ndarray, n_other: int, *, ratio: float = 0.05, sample: int = 1024,
                   rng: np.random.Generator | None = None) -> tuple[float, float]:
    """(typical nearest-neighbour distance in ``a``, the distance below which a pair is a near duplicate).

    The typical distance is the median distance from a sample of training examples to their
    nearest other example; the data's intrinsic dimension ``d`` comes from the ratio of second
    to first neighbour distances (TwoNN). In ``d`` dimensions a fraction ``ln2 * t**d`` of
    examples has a neighbour closer than ``t`` times the median by chance, so ``t`` is lowered
    until fewer than 0.05 such chance matches are expected among ``n_other`` examples: random
    continuous data in few dimensions has close pairs everywhere, and they are not leaks.
    """
    rng = rng or np.random.default_rng(0)
    n = len(a)
    idx = rng.choice(n, min(n, sample), replace=False) if n > sample else np.arange(n)
    ref = a[idx].astype(np.float64)
    sq = np.einsum("ij,ij->i", ref, ref)
    d2 = np.maximum(sq[:, None] + sq[None, :] - 2.0 * ref @ ref.T, 0.0)
    np.fill_diagonal(d2, np.inf)
    d2 = np.sort(d2, axis=1)[:, :2]
    r1, r2 = np.sqrt(d2[:, 0]), np.sqrt(d2[:, 1])
    ok = (r1 > 1e-9) & np.isfinite(r2)
    if ok.sum() < 3:
        return 0.0, 0.0
    typical = float(np.median(r1[ok]))
    logs = np.log(r2[ok] / r1[ok])
    dim = float(a.shape[1]) if logs.sum() <= 0 else float(np.clip(ok.sum() / logs.sum(), 1.0, a.shape[1]))
    chance = math.log(2) * max(n_other, 1) * max(1.0, n / len(idx))
    t = min(ratio, (0.05 / chance) ** (1.0 / dim))
    return typical, t * typical


def _standardise(train: np.ndarray, other: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Both sets scaled feature by feature with the training set's mean and spread (floored)."""
    a = np.asarray(train, dtype=np.float32).reshape(len(train), -1)
    b = np.asarray(other, dtype=np.float32).reshape(len(other), -1)
    mean = a.mean(axis=0, dtype=np.float64)
    std = a.std(axis=0, dtype=np.float64)
    # a nearly constant feature (a border pixel) must not turn a tiny difference into a large one
    spread = std[std > 1e-12]
    floor = 0.2 * float(np.median(spread)) if spread.size else 1.0
    std = np.maximum(std, floor)
    return ((a - mean) / std).astype(np.float32), ((b - mean) / std).astype(np.float32)
