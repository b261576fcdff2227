"""preprocessing: tabular features normalised per row (per sample) instead of per column.

``(X - X.mean(axis=1)) / X.std(axis=1)``, ``X.mean(1)`` for ``X.mean(0)`` in torch, or sklearn's
``normalize(X)`` (unit L2 rows) where ``StandardScaler`` was meant: each sample is rescaled by its
own statistics. When the features are on different scales (an area in the thousands next to
ratios below 1), the row statistics are those of the largest feature: after the rescale that
feature is nearly the same in every row and every other feature is squashed into a tiny range.
The model sees almost constant inputs and underfits; nothing fails.

Evidence, on sampled training batches of a 2-D floating-point data input (4..256 features, no
autograd history): every row has mean 0 and std 1, or unit L2 / L1 norm, and one feature holds
>= ``DOMINANT_SHARE`` of each row's squared values on average, over >= ``MIN_BATCHES`` batches and
>= ``MIN_ROWS`` rows. Per-row normalisation of signals, spectra, TF-IDF or bag-of-words rows (no
single feature dominates every row) stays quiet.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable

import torch

from nndoctor.checks import Check, register
from nndoctor.findings import Finding
from nndoctor.monitor.events import ModelInput, RunEnd

__all__ = ["RowNormalisedFeatures", "row_normalisation"]

MIN_FEATURES, MAX_FEATURES = 4, 256
MIN_BATCHES, MIN_ROWS = 2, 32
DOMINANT_SHARE = 0.5
ROW_TOL = 1e-3


def row_normalisation(x: torch.Tensor) -> str | None:
    """``"mean 0 / std 1"``, ``"unit L2 norm"`` or ``"unit L1 norm"`` when every row of ``x`` (N, F) is
    normalised that way, else None."""
    x = x.double()
    mean, std0, std1 = x.mean(1), x.std(1, correction=0), x.std(1, correction=1)
    if bool((mean.abs() < ROW_TOL).all()) and (bool(((std0 - 1).abs() < 10 * ROW_TOL).all())
                                               or bool(((std1 - 1).abs() < 10 * ROW_TOL).all())):
        return "mean 0 / std 1"
    if bool(((x.norm(dim=1) - 1).abs() < ROW_TOL).all()):
        return "unit L2 norm"
    if bool(((x.abs().sum(1) - 1).abs() < ROW_TOL).all()):
        return "unit L1 norm"
    return None


@dataclass
class _Tally:
    kind: str
    features: int
    first_step: int
    batches: int = 0
    rows: int = 0
    share_sum: torch.Tensor | None = None
    mean_sum: torch.Tensor | None = None
    broken: bool = False
    done: bool = False


@register
class RowNormalisedFeatures(Check):
    """Features rescaled per row while one feature dwarfs the others: the normalisation axis is wrong."""

    code = "preprocessing.rows-normalised-instead-of-columns"
    needs = ("model_input", "end")
    sampled_only = frozenset({"model_input"})

    def __init__(self, state: Any) -> None:
        super().__init__(state)
        self._tallies: dict[tuple[int, str], _Tally] = {}

    def check(self, event: ModelInput | RunEnd) -> Iterable[Finding]:
        if isinstance(event, RunEnd):
            return [f for key in list(self._tallies) for f in self._judge(key)]
        if not event.grad_enabled:
            return ()
        x = next((a for a in event.args if isinstance(a, torch.Tensor)), None)
        if (x is None or x.dim() != 2 or not x.is_floating_point() or x.grad_fn is not None
                or not MIN_FEATURES <= x.shape[1] <= MAX_FEATURES or x.shape[0] < 2):
            return ()
        key = (id(event.model), event.name)
        tally = self._tallies.get(key)
        if tally is not None and (tally.broken or tally.done):
            return ()
        rows = x[:512].detach()
        if not bool(torch.isfinite(rows).all()):
            return ()
        kind = row_normalisation(rows)
        if tally is None:
            if kind is None:
                self._tallies[key] = _Tally(kind="", features=0, first_step=event.step, broken=True)
                return ()
            tally = self._tallies[key] = _Tally(kind=kind, features=int(x.shape[1]), first_step=event.step)
        if kind != tally.kind or int(x.shape[1]) != tally.features:
            tally.broken = True
            return ()
        sq = rows.double().square()
        share = (sq / sq.sum(1, keepdim=True).clamp_min(1e-300)).sum(0)
        mean = rows.double().sum(0)
        tally.share_sum = share if tally.share_sum is None else tally.share_sum + share
        tally.mean_sum = mean if tally.mean_sum is None else tally.mean_sum + mean
        tally.batches += 1
        tally.rows += int(rows.shape[0])
        if tally.batches >= MIN_BATCHES + 2:
            return self._judge(key)
        return ()

    def _judge(self, key: tuple[int, str]) -> list[Finding]:
        tally = self._tallies[key]
        if (tally.broken or tally.done or tally.batches < MIN_BATCHES or tally.rows < MIN_ROWS
                or tally.share_sum is None or tally.mean_sum is None):
            return []
        tally.done = True
        shares = tally.share_sum / tally.rows
        col = int(shares.argmax())
        share = float(shares[col])
        if share < DOMINANT_SHARE:
            return []
        means = tally.mean_sum / tally.rows
        others = torch.cat([means[:col], means[col + 1:]])
        model = key[1]
        ev = {"model": model, "normalisation": tally.kind, "features": tally.features, "dominant_feature": col,
              "dominant_share": round(share, 4), "dominant_mean": round(float(means[col]), 4),
              "other_features_mean_range": [round(float(others.min()), 4), round(float(others.max()), 4)],
              "rows": tally.rows, "batches": tally.batches,
              "suggestion": "(X - X.mean(axis=0)) / X.std(axis=0)" if tally.kind.startswith("mean")
              else "StandardScaler().fit(X_train) instead of normalize(X)"}
        return [self.finding(
            f"every input row of {model} ({tally.features} features, {tally.rows} rows) is normalised on its own "
            f"({tally.kind} per row) and feature {col} alone holds {share:.0%} of each row's squared values (mean "
            f"{float(means[col]):.3g}; the others stay within [{float(others.min()):.3g}, {float(others.max()):.3g}]): "
            f"the features were on different scales, so each row was scaled by its largest feature and the other "
            f"features are squashed to nearly constant values. Normalise each feature (column) instead",
            ev, location=model, step=tally.first_step)]
