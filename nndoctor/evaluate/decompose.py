"""Bias-variance decomposition with two validation sets (field guide, step 3).

    test error = irreducible + avoidable bias + variance + distribution shift + val overfitting

Each term is the difference of two error rates. With per-example errors the terms get a
bootstrap confidence interval, so a gap inside the noise is reported as noise rather
than as a finding; with plain rates and sample sizes a normal approximation is used.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from nndoctor import catalogue
from nndoctor.findings import Finding, Severity

__all__ = ["Decomposition", "Term", "decompose", "decompose_errors"]

#: term name -> (finding code, the error rates it is the gap between)
_TERMS = {
    "avoidable_bias": ("fit.avoidable-bias", "irreducible", "train"),
    "variance": ("fit.variance", "train", "train_val"),
    "distribution_shift": ("fit.distribution-shift", "train_val", "test_val"),
    "val_overfitting": ("fit.validation-overfitting", "test_val", "test"),
}


@dataclass(frozen=True)
class Term:
    """One term of the decomposition, with its confidence interval."""

    name: str
    value: float
    low: float | None = None
    high: float | None = None

    @property
    def significant(self) -> bool:
        """True when the interval excludes 0 (or no interval is known and the gap is > 0)."""
        if self.low is None:
            return self.value > 0
        return self.low > 0

    def to_dict(self) -> dict[str, float | None | str | bool]:
        return {"name": self.name, "value": self.value, "low": self.low, "high": self.high,
                "significant": self.significant}


@dataclass
class Decomposition:
    """Error rates per split, the terms between them, and the dominant term."""

    errors: dict[str, float]
    terms: list[Term]
    irreducible: float = 0.0
    notes: list[str] = field(default_factory=list)
    confidence: float = 0.95

    def term(self, name: str) -> Term | None:
        return next((t for t in self.terms if t.name == name), None)

    @property
    def dominant(self) -> Term | None:
        """The largest term that is outside the noise, if any."""
        sig = [t for t in self.terms if t.significant]
        return max(sig, key=lambda t: t.value) if sig else None

    def findings(self, *, min_gap: float = 0.0) -> list[Finding]:
        """The dominant term as a ``fit`` warning (if at least ``min_gap``), other significant terms as info."""
        out: list[Finding] = []
        dominant = self.dominant
        for t in sorted(self.terms, key=lambda t: -t.value):
            if not t.significant or t.value <= 0:
                continue
            code, lo_split, hi_split = _TERMS[t.name]
            lo = self.irreducible if lo_split == "irreducible" else self.errors[lo_split]
            hi = self.errors[hi_split]
            ci = f" (95% CI {t.low:.3f}..{t.high:.3f})" if t.low is not None else ""
            label = t.name.replace("_", " ")
            msg = (f"{label} is {t.value:.3f}{ci}: {hi_split.replace('_', '-')} error {hi:.3f} vs "
                   f"{lo_split.replace('_', '-')} error {lo:.3f}")
            material = t.value >= min_gap
            if t is dominant and material:
                msg += "; it is the largest term, attack it first"
            elif t is dominant:
                msg += f"; the largest term, but below {min_gap:g}: no action needed unless your target demands it"
            evidence = {"term": t.name, "value": t.value, "low": t.low, "high": t.high,
                        "errors": dict(self.errors), "irreducible": self.irreducible}

            out.append(catalogue.finding(code, severity=Severity.WARNING if t is dominant and material else Severity.INFO,
                                         message=msg, evidence=evidence, location=t.name))
        return out

    def to_dict(self) -> dict[str, object]:
        dom = self.dominant
        return {"errors": dict(self.errors), "irreducible": self.irreducible,
                "terms": [t.to_dict() for t in self.terms], "dominant": dom.name if dom else None,
                "notes": list(self.notes), "confidence": self.confidence}


def _check_rate(name: str, value: float | None) -> None:
    if value is None:
        return
    if not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a finite error >= 0, got {value!r}")


def decompose(
    train: float,
    train_val: float,
    test_val: float | None = None,
    test: float | None = None,
    irreducible: float = 0.0,
    *,
    sizes: dict[str, int] | None = None,
) -> Decomposition:
    """Decompose from error rates (e.g. ``decompose(0.27, 0.29, 0.32, 0.34, irreducible=0.25)``).

    ``sizes`` (examples per split) adds normal-approximation intervals for error rates.
    """
    for name, value in (("train", train), ("train_val", train_val), ("test_val", test_val),
                        ("test", test), ("irreducible", irreducible)):
        _check_rate(name, value)
    errors = {"train": float(train), "train_val": float(train_val)}
    if test_val is not None:
        errors["test_val"] = float(test_val)
    if test is not None:
        errors["test"] = float(test)
    sizes = sizes or {}

    def se(split: str) -> float | None:
        n = sizes.get(split)
        if not n:
            return None
        p = min(max(errors[split], 0.0), 1.0)
        return math.sqrt(max(p * (1 - p), 1e-12) / n)

    terms = []
    notes = []
    for name, (_, lo_split, hi_split) in _TERMS.items():
        if hi_split not in errors or (lo_split != "irreducible" and lo_split not in errors):
            continue
        lo = irreducible if lo_split == "irreducible" else errors[lo_split]
        value = errors[hi_split] - lo
        s_hi, s_lo = se(hi_split), (0.0 if lo_split == "irreducible" else se(lo_split))
        if s_hi is not None and s_lo is not None:
            half = 1.96 * math.sqrt(s_hi**2 + s_lo**2)
            terms.append(Term(name, value, value - half, value + half))
        else:
            terms.append(Term(name, value))
    notes.extend(_notes(errors, irreducible))
    return Decomposition(errors=errors, terms=terms, irreducible=float(irreducible), notes=notes)


def _notes(errors: dict[str, float], irreducible: float) -> list[str]:
    notes = [f"irreducible (human-level) error taken as {irreducible:g}"
             + (" (default: pass --human-error to set it)" if irreducible == 0 else "")]
    if "test_val" not in errors:
        notes.append("no test-val set: the distribution-shift term is omitted (it needs validation data "
                     "from the target distribution besides train-val)")
    if "test" not in errors:
        notes.append("no test set: the validation-overfitting term is omitted")
    return notes


def decompose_errors(
    train: Sequence[float] | np.ndarray,
    train_val: Sequence[float] | np.ndarray,
    test_val: Sequence[float] | np.ndarray | None = None,
    test: Sequence[float] | np.ndarray | None = None,
    irreducible: float = 0.0,
    *,
    n_boot: int = 1000,
    seed: int = 0,
    confidence: float = 0.95,
) -> Decomposition:
    """Decompose from per-example errors (0/1 for classification, losses otherwise).

    Each split is resampled independently ``n_boot`` times; a term's interval is the
    percentile interval of its bootstrap distribution.
    """
    if n_boot < 50:
        raise ValueError(f"n_boot must be >= 50, got {n_boot!r}")
    if not 0.5 < confidence < 1:
        raise ValueError(f"confidence must be in (0.5, 1), got {confidence!r}")
    rng = np.random.default_rng(seed)
    arrays: dict[str, np.ndarray] = {}
    for name, values in (("train", train), ("train_val", train_val), ("test_val", test_val), ("test", test)):
        if values is None:
            continue
        arr = np.asarray(values, dtype=np.float64).reshape(-1)
        if arr.size == 0:
            raise ValueError(f"{name} has no examples")
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"{name} contains non-finite per-example errors")
        arrays[name] = arr
    errors = {k: float(v.mean()) for k, v in arrays.items()}
    boots = {k: np.array([v[rng.integers(0, v.size, v.size)].mean() for _ in range(n_boot)])
             for k, v in arrays.items()}
    alpha = (1 - confidence) / 2
    terms = []
    for name, (_, lo_split, hi_split) in _TERMS.items():
        if hi_split not in arrays or (lo_split != "irreducible" and lo_split not in arrays):
            continue
        lo_b = irreducible if lo_split == "irreducible" else boots[lo_split]
        diff = boots[hi_split] - lo_b
        value = errors[hi_split] - (irreducible if lo_split == "irreducible" else errors[lo_split])
        terms.append(Term(name, value, float(np.quantile(diff, alpha)), float(np.quantile(diff, 1 - alpha))))
    return Decomposition(errors=errors, terms=terms, irreducible=float(irreducible),
                         notes=_notes(errors, irreducible), confidence=confidence)
