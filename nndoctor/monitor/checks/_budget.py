"""Reading a training-loss curve for its budget: how far along its own descent a run stopped.

A run given too few updates (too few epochs or steps, a batch so large that the epochs make few
updates, a learning rate decayed to ~0 while the loss still fell) leaves a curve cut in its descent:
still falling about as steeply as it began, with most of the fall it was heading for still ahead.
A healthy short run has usually bent by its end (its steep part is behind it) even if it still falls.

Two readings of one curve:

- against optimizer steps, and against *effective* steps: the weights move in proportion to the
  learning rate, so the run's length in steps at its peak rate is the sum of ``lr / peak`` over its
  steps. Against effective steps a curve bends where training converged, not where a schedule
  stopped it; with a constant rate both readings are the same.
- a saturation fit ``L(x) = c + a exp(-x / tau)`` (least squares, over a grid of ``tau`` from 0.003
  to 30 run lengths): ``c`` is the level the curve is heading for, ``tau / run length`` how much of
  the descent the run covered (a ratio >= 1: less than one time constant of it).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = ["CUT_BEND", "STRAIGHT", "CUT_GAIN", "CUT_SHARE", "CUT_T", "CUT_TAU", "Descent", "effective_steps", "read_descent",
           "slope"]

_TAU_GRID = np.logspace(-2.5, 1.5, 41)  # tau / run length

# A curve cut in its descent (measured on 14 faulty budget probes against ~200 healthy runs: see
# Descent.cut): the second half still falls significantly (slope beyond CUT_T standard errors of the
# noise) by >= CUT_SHARE of the final level, at >= CUT_BEND of the first half's slope, and the
# saturation fit's time constant is >= CUT_TAU run lengths with >= CUT_GAIN of the final level still
# to lose.
CUT_T = -3.0
CUT_SHARE = 0.05
CUT_BEND = 0.3
CUT_TAU = 0.9
CUT_GAIN = 0.2
STRAIGHT = 4.0  # a time constant this many run lengths: the curve has not begun to flatten


def slope(x: np.ndarray, y: np.ndarray) -> float:
    """Least-squares slope of ``y`` against ``x`` (0 without spread)."""
    xc = x.astype(np.float64) - float(x.mean())
    sxx = float((xc * xc).sum())
    return float((xc * (y - y.mean())).sum()) / sxx if sxx > 0 else 0.0


def effective_steps(steps: np.ndarray, lr_steps: list[int], lr_values: list[float]) -> np.ndarray | None:
    """Cumulative ``lr / peak`` at each of ``steps`` (the lr history is recorded on change: the rate of a
    step is the latest recorded at or before it). None without a positive rate."""
    if not lr_values:
        return None
    ls = np.asarray(lr_steps, dtype=np.int64)
    lv = np.asarray(lr_values, dtype=np.float64)
    peak = float(np.nanmax(lv)) if np.isfinite(lv).any() else 0.0
    if not peak > 0:
        return None
    pos = np.searchsorted(ls, steps, side="right") - 1
    rate = np.where(pos >= 0, lv[np.clip(pos, 0, None)], lv[0])
    rate = np.where(np.isfinite(rate), np.clip(rate, 0.0, None), 0.0)
    gaps = np.diff(np.concatenate(([0], steps))).astype(np.float64)
    return np.cumsum(rate * gaps) / peak


def _saturation_fit(x: np.ndarray, y: np.ndarray) -> tuple[float, float] | None:
    """(asymptote c, tau / run length) of the best ``c + a exp(-x / tau)`` with ``a > 0``."""
    x0 = x - x[0]
    span = float(x0[-1])
    if not span > 0:
        return None
    best: tuple[float, float, float] | None = None
    ones = np.ones_like(x0)
    for r in _TAU_GRID:
        e = np.exp(-x0 / (r * span))
        design = np.stack([ones, e], 1)
        coef, *_ = np.linalg.lstsq(design, y, rcond=None)
        if not coef[1] > 0:
            continue
        sse = float(((design @ coef - y) ** 2).sum())
        if best is None or sse < best[0]:
            best = (sse, float(coef[0]), float(r))
    return None if best is None else (best[1], best[2])


@dataclass(frozen=True)
class Descent:
    """One reading of a loss curve (against steps or effective steps)."""

    length: float  # the run's length on this axis
    first: float  # median of the first 10% of the losses
    level: float  # median of the last 10%
    bend: float  # slope of the second half / slope of the first (1: straight, > 1: steepening, ~0: flat)
    tail_t: float  # the second half's slope in standard errors of the step-to-step noise (< 0: falling)
    tail_drop: float  # how much the second half's fitted line falls across it
    asymptote: float | None  # where the saturation fit says the curve is heading
    tau_ratio: float | None  # the fit's time constant / the run's length

    @property
    def fall(self) -> float:
        """Share of the first level lost by the end."""
        return (self.first - self.level) / self.first if self.first > 0 else 0.0

    @property
    def gain(self) -> float:
        """Share of the final level still to lose on the way to the fit's asymptote (floored at 0)."""
        if self.asymptote is None or not self.level > 0:
            return 0.0
        return max(0.0, self.level - max(self.asymptote, 0.0)) / self.level

    @property
    def cut(self) -> bool:
        """The run stopped early in its descent (see the module's thresholds)."""
        return (self.tail_t <= CUT_T and self.tail_drop >= CUT_SHARE * self.level and self.bend >= CUT_BEND
                and (self.tau_ratio or 0.0) >= CUT_TAU and self.gain >= CUT_GAIN)

    def describe(self) -> str:
        """The shape in words: how steep the end is, and where the fit says the curve is heading."""
        steep = (f"its last half falls {self.bend:.2f}x as steeply as its first" if self.bend < 1
                 else "it falls ever faster")
        if (self.tau_ratio or 0.0) >= STRAIGHT or self.asymptote is None:
            return f"{steep}, with no sign of flattening yet"
        return (f"{steep}; a saturation fit puts the level it is heading for {self.gain:.0%} lower, at "
                f"~{max(self.asymptote, 0.0):.4g}")

    @property
    def covered(self) -> float:
        """Share of the fall from the first level to the asymptote already made (1 without a fit)."""
        if self.asymptote is None:
            return 1.0
        total = self.first - max(self.asymptote, 0.0)
        return (self.first - self.level) / total if total > 0 else 1.0


def read_descent(x: np.ndarray, values: np.ndarray) -> Descent | None:
    """Read a curve of >= 8 points (``x`` increasing) for how far along its descent it stopped."""
    n = len(values)
    if n < 8 or not float(x[-1] - x[0]) > 0:
        return None
    k = max(2, n // 10)
    first, level = float(np.median(values[:k])), float(np.median(values[-k:]))
    late = x >= (float(x[0]) + float(x[-1])) / 2
    if late.sum() < 4 or (~late).sum() < 4:
        return None
    early_slope, late_slope = slope(x[~late], values[~late]), slope(x[late], values[late])
    bend = late_slope / early_slope if early_slope < 0 else math.inf if late_slope < 0 else 0.0
    xl, vl = x[late], values[late]
    xc = xl - float(xl.mean())
    sxx = float((xc * xc).sum())
    sigma = 1.4826 * float(np.median(np.abs(np.diff(vl)))) / math.sqrt(2.0)
    se = sigma / math.sqrt(sxx) if sxx > 0 else math.inf
    tail_t = late_slope / se if se > 0 else (-math.inf if late_slope < 0 else 0.0)
    fit = _saturation_fit(x, values)
    return Descent(length=float(x[-1]), first=first, level=level, bend=bend, tail_t=tail_t,
                   tail_drop=-late_slope * float(xl[-1] - xl[0]),
                   asymptote=fit[0] if fit else None, tau_ratio=fit[1] if fit else None)
