"""Loss-curve analysis: per-step view, robust smoothing, noise level and the four symptoms.

A mini-batch loss is noisy, so every decision here compares a change of the *level* of
the curve (a median over a window) with the noise of that level estimate (a robust
sigma from first differences), never single values. The four symptoms are the ones of
the field guide's overfit-a-batch table: the loss goes up, explodes, oscillates or
plateaus. :func:`analyze_losses` caches one analysis per number of recorded losses, so
several checks can share it at no extra cost.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.ma  # noqa: F401  (np.median imports it on first use: at import, not inside a training step)

from nndoctor.monitor.births import last_restart

__all__ = [
    "AVERAGED_VALUES",
    "LOSS_ROWS_KEY",
    "note_loss_values",
    "REVERSAL_KEY",
    "REVERSAL_SAMPLES",
    "SURROGATE_KEY",
    "SURROGATE_SAMPLES",
    "CurveAnalysis",
    "analyze",
    "analyze_losses",
    "block_median",
    "median1",
    "read_due",
    "ConstantBaseline",
    "entropy_estimate",
    "loss_progress",
    "noise_sigma",
    "not_an_objective",
    "per_step",
    "rolling_median",
    "soft_target_swings",
    "surrogate_loss",
    "gradient_reversal",
    "hovers_around_zero",
    "isolated_spikes",
    "staircase",
    "still_falling",
]

#: at most this many points enter the smoothing (older ones are block-medians)
MAX_POINTS = 768
#: a second half trending down at least this much (Mann-Kendall z) is not flat: one-sided 1%
STILL_DOWN_Z = -2.33
EXPLODE_FACTOR = 1e3
#: an explosion's peak must have a neighbour this far above the start too: a real blow-up holds (the weights
#: are wrecked, the next batch's loss is as bad) or ramps up; one batch whose loss alone is 1000x the start, with
#: the losses next to it back at the level, is a batch (an outlier target of heavy-tailed data), not the weights
HELD_FACTOR = 1e2
HELD_WINDOW = 3
#: a loss that takes both signs on at least this share of its values each, and changes sign on at least
#: SIGN_FLIPS of its steps, hovers around zero: zero is no floor (see hovers_around_zero)
SIGN_SHARE = 0.2
SIGN_FLIPS = 0.1
#: such a loss explodes when it reaches this many times its typical magnitude (it has no trend towards zero,
#: so its typical magnitude is the level a one-signed loss's start is: 100x is as far off as 1000x its start)
SIGNED_EXPLODE_FACTOR = 1e2
#: spikes above the trend that follow one another no more often than this above their rate are independent
#: single batches (heavy-tailed targets), not swings of the weights (see isolated_spikes)
SPIKE_CLUSTER = 0.1
SURROGATE_KEY = "nndoctor.surrogate_loss"  # state.extra: the policy-gradient surrogate's evidence
#: state.extra: target values per training loss call (recorded on sampled steps, see note_loss_values)
LOSS_ROWS_KEY = "nndoctor.loss_rows"
ROWS_SAMPLED = 32  # training loss calls whose number of target values is recorded
#: a loss averaged over fewer values than this (online learning, batches of 1-8) is judged on block
#: means of about this many values: one example's loss swings by its own size at convergence
AVERAGED_VALUES = 16
SURROGATE_SAMPLES = 2  # sampled backward calls that must show it
REVERSAL_KEY = "nndoctor.gradient_reversal"  # state.extra: a gradient reversal layer's evidence
REVERSAL_SAMPLES = 2  # sampled backward calls that must show it


def note_loss_values(state: Any, inp: Any, target: Any) -> None:
    """Record how many values a training loss call averages (its examples, or its elements for
    per-element targets) for the first ROWS_SAMPLED calls seen: a curve of 1-example losses is noisy
    and is judged on block means (``analyze_losses``)."""
    rows = state.extra.setdefault(LOSS_ROWS_KEY, [])
    if len(rows) >= ROWS_SAMPLED:
        return
    soft = target.is_floating_point() and target.shape == inp.shape and target.dim() >= 2
    rows.append(max(1, target.numel() // (int(target.shape[1]) if soft else 1)))


def read_due(total: int, last: int, every: int = 25) -> bool:
    """Whether the loss history is due for another read: every ``every`` losses at first,
    then every 1/8 of the run so far (the cost stays tiny on long runs)."""
    return total - last >= max(every, last // 8)


def per_step(steps: list[int], values: list[float]) -> tuple[np.ndarray, np.ndarray]:
    """One value per step (the mean of several backward calls in one step).

    Scripts without an optimizer never advance the step counter: then every value is a point.
    """
    s = np.asarray(steps, dtype=np.int64)
    v = np.asarray(values, dtype=np.float64)
    if len(s) >= 2 and s[0] == s[-1]:
        return np.arange(1, len(v) + 1), v  # no optimizer: one point per backward call
    if len(s) < 2 or bool((s[1:] > s[:-1]).all()):
        return s, v  # (steps only grow: strictly increasing = one value per step, no sort needed)
    uniq, idx, counts = np.unique(s, return_index=True, return_counts=True)
    with np.errstate(invalid="ignore", over="ignore"):
        sums = np.add.reduceat(v, idx)
    return uniq, sums / counts


def median1(a: np.ndarray) -> Any:
    """``np.median`` of a 1-D float64 array without its any-axis machinery (a curve read takes a dozen
    medians): the same order statistics from ``np.partition``, the two middle ones averaged as
    ``np.mean`` does, NaN when the array holds one; anything else goes to ``np.median``."""
    if not isinstance(a, np.ndarray) or a.ndim != 1 or a.dtype != np.float64 or a.size == 0:
        return np.median(a)
    h = a.size // 2
    if a.size % 2:
        part = np.partition(a, (h, -1))
        mid = part[h]
    else:
        part = np.partition(a, (h - 1, h, -1))
        mid = (part[h - 1] + part[h]) / 2
    return part[-1] if np.isnan(part[-1]) else mid


def rolling_median(values: np.ndarray, window: int) -> np.ndarray:
    """Centred running median (shrinking at the ends)."""
    n = len(values)
    window = max(1, min(window, n))
    if window == 1 or n < 3:
        return values.copy()
    half = window // 2
    padded = np.concatenate([np.full(half, values[0]), values, np.full(half, values[-1])])
    view = np.lib.stride_tricks.sliding_window_view(padded, 2 * half + 1)
    return np.median(view, axis=1)


def block_median(values: np.ndarray, block: int) -> np.ndarray:
    """Medians of consecutive blocks of ``block`` points (the last, partial block included)."""
    n = len(values)
    block = max(1, min(block, n))
    cut = n // block * block
    out = np.median(values[:cut].reshape(-1, block), axis=1)
    if cut < n:
        out = np.append(out, median1(values[cut:]))
    return out


def noise_sigma(values: np.ndarray) -> float:
    """Robust per-point noise: MAD of first differences, scaled to a Gaussian sigma."""
    if len(values) < 3:
        return 0.0
    d = np.diff(values)
    mad = float(median1(np.abs(d - median1(d))))
    return 1.4826 * mad / math.sqrt(2.0)


def entropy_estimate(counts: np.ndarray, n_classes: int | None = None) -> float:
    """Entropy (nats) of the distribution behind class ``counts``, corrected for sampling.

    The plug-in entropy of a sample is biased low, badly so when many classes are rare or
    unseen (a vocabulary of 10k words seen through a few thousand targets). The Chao-Shen
    estimator corrects both: the probabilities are shrunk by the sample coverage
    (1 - singletons / samples, Good-Turing) and each term is weighted by the inverse of its
    chance to be seen at all (Horvitz-Thompson). The result never exceeds ``log(n_classes)``.
    """
    c = np.asarray(counts, dtype=np.float64)
    c = c[c > 0]
    n = float(c.sum())
    if n < 2 or len(c) == 0:
        return float("nan")
    f1 = float(np.sum(c == 1))
    if f1 >= n:
        f1 = n - 1.0
    pa = (1.0 - f1 / n) * c / n
    seen = 1.0 - np.power(1.0 - pa, n)
    h = float(-(pa * np.log(pa) / seen).sum())
    return min(h, math.log(n_classes)) if n_classes and n_classes >= 2 else h


class ConstantBaseline:
    """The loss of the best constant prediction (class priors / target mean), pooled over batches.

    Fed with the targets of a few training loss calls; :meth:`value` is ``None`` when the
    loss is unknown, the targets are soft labels, or the script mixes several losses. For
    class targets it is the sampling-corrected entropy of the class frequencies
    (:func:`entropy_estimate`), and :attr:`coverage` says how much of the distribution's
    mass the sample has seen (low: the estimate is uncertain).
    """

    def __init__(self) -> None:
        self.name: str | None = None
        self.mixed = False
        self.batches = 0
        self._counts: np.ndarray | None = None
        self._sum: np.ndarray | None = None
        self._sumsq: np.ndarray | None = None
        self._n = 0
        self._sample: list[np.ndarray] = []
        self._entropy = 0.0  # summed binary entropy of BCE targets (soft ones: the loss's floor)
        self._entropy_n = 0

    def add(self, name: str, target: Any, n_outputs: int | None) -> None:
        if self.name is not None and name != self.name:
            self.mixed = True
        if self.mixed:
            return
        self.name = name
        try:
            t = np.asarray(target.detach().float().cpu().numpy(), dtype=np.float64)
        except (AttributeError, TypeError, RuntimeError, ValueError):
            return
        if t.size < 2 or not np.all(np.isfinite(t)):
            return
        self.batches += 1
        if name in ("cross_entropy", "nll_loss"):
            if not n_outputs or n_outputs < 2 or np.any(t != np.round(t)):
                self.mixed = True  # soft labels or unknown classes: no baseline
                return
            t = t[(t >= 0) & (t < n_outputs)].astype(np.int64)
            counts = np.bincount(t, minlength=n_outputs)
            if self._counts is None or len(self._counts) != len(counts):
                self._counts = counts
            else:
                self._counts = self._counts + counts
        elif name in ("binary_cross_entropy", "binary_cross_entropy_with_logits", "mse_loss"):
            rows = t.reshape(t.shape[0], -1) if t.ndim >= 2 else t.reshape(-1, 1)
            if self._sum is not None and self._sum.shape != rows.shape[1:]:
                self.mixed = True
                return
            if name != "mse_loss":
                c = np.clip(t, 1e-12, 1 - 1e-12)
                self._entropy += float(np.sum(-(c * np.log(c) + (1 - c) * np.log(1 - c))))
                self._entropy_n += t.size
            self._sum = rows.sum(0) + (0 if self._sum is None else self._sum)
            self._sumsq = (rows ** 2).sum(0) + (0 if self._sumsq is None else self._sumsq)
            self._n += rows.shape[0]
        elif name in ("l1_loss", "smooth_l1_loss", "huber_loss"):
            if sum(a.size for a in self._sample) < 8192:
                self._sample.append(t.ravel())

    @property
    def n_classes(self) -> int | None:
        """The number of classes of class targets (the logits' width), else ``None``."""
        return None if self._counts is None else len(self._counts)

    @property
    def coverage(self) -> float:
        """Good-Turing sample coverage of the class targets (1 for other losses)."""
        if self._counts is None or self._counts.sum() < 1:
            return 1.0
        return 1.0 - float(np.sum(self._counts == 1)) / float(self._counts.sum())

    def floor(self) -> float:
        """The loss a perfect model still pays: the mean binary entropy of soft BCE targets (an
        autoencoder's pixels in (0, 1)); 0 for hard targets and for the other losses."""
        if self.mixed or not self._entropy_n:
            return 0.0
        return self._entropy / self._entropy_n

    def value(self) -> float | None:
        if self.mixed or self.name is None:
            return None
        if self._counts is not None:
            if self._counts.sum() < 2:
                return None
            return entropy_estimate(self._counts, len(self._counts))
        if self._sum is not None and self._sumsq is not None and self._n >= 2:
            mean = self._sum / self._n
            if self.name == "mse_loss":
                return float(np.mean(np.maximum(self._sumsq / self._n - mean ** 2, 0.0)))
            m = np.clip(mean, 1e-6, 1 - 1e-6)
            return float(np.mean(-(m * np.log(m) + (1 - m) * np.log(1 - m))))
        if self._sample:
            t = np.concatenate(self._sample)
            return float(np.abs(t - median1(t)).mean())
        return None


@dataclass
class CurveAnalysis:
    """What the loss curve shows: levels, noise and the symptoms found (name -> evidence)."""

    n: int = 0
    initial: float = float("nan")  # the first loss, before any update
    early_peak: float = float("nan")  # the largest loss in the first quarter of the run
    early_peak_step: int = 0
    start: float = float("nan")
    end: float = float("nan")
    minimum: float = float("nan")
    sigma: float = 0.0
    signed: bool = False  # the loss hovers around zero (hovers_around_zero): zero is no floor
    symptoms: dict[str, dict[str, Any]] = field(default_factory=dict)

    def has(self, symptom: str) -> bool:
        return symptom in self.symptoms

    @property
    def spike(self) -> float:
        """How far the loss jumped above its first value early on (1 = no jump)."""
        if not (self.initial > 0 and math.isfinite(self.early_peak)):
            return 1.0
        return self.early_peak / self.initial

    @property
    def never_improved(self) -> bool:
        """The loss ends about where it began (or higher)."""
        return math.isfinite(self.end) and self.initial > 0 and self.end >= 0.9 * self.initial


def _thin(s: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Block medians of old points so that at most MAX_POINTS remain (the newest kept exact)."""
    if len(v) <= MAX_POINTS:
        return s, v
    keep = MAX_POINTS // 2
    old_s, old_v = s[:-keep], v[:-keep]
    block = math.ceil(len(old_v) / (MAX_POINTS - keep))
    cut = len(old_v) // block * block
    bs = old_s[:cut:block]
    bv = np.median(old_v[:cut].reshape(-1, block), axis=1)
    return np.concatenate([bs, old_s[cut:], s[-keep:]]), np.concatenate([bv, old_v[cut:], v[-keep:]])


def _steady(mag: np.ndarray) -> float:
    """Fraction of (smoothed) steps on which the loss grew: a steady climb vs a sudden blow-up."""
    rising = np.diff(rolling_median(mag, 9)) if len(mag) >= 6 else np.array([])
    return round(float(np.mean(rising > 0)), 3) if len(rising) >= 5 else 0.0


def hovers_around_zero(v: np.ndarray) -> bool:
    """The loss takes both signs, each on at least ``SIGN_SHARE`` of its finite values, and changes sign on
    at least ``SIGN_FLIPS`` of its steps: a difference of two terms balanced at zero (contrastive divergence's
    free energy of the data minus that of the model's samples, an energy model's positive minus negative
    phase, a critic's estimate), not a loss minimised towards a floor. Its first value (near zero by
    symmetry at initialisation) and its distance from zero are no scale, and its rises and swings measure no
    progress. A loss that passes through zero once (a continuous density's NLL falling below 0) or runs
    off to -inf (a lost sign) changes sign once: not this."""
    f = v[np.isfinite(v)]
    if len(f) < 8:
        return False
    pos, neg = float(np.mean(f > 0)), float(np.mean(f < 0))
    flips = float(np.mean(np.sign(f[1:]) * np.sign(f[:-1]) < 0))
    return min(pos, neg) >= SIGN_SHARE and flips >= SIGN_FLIPS


def isolated_spikes(v: np.ndarray, high: np.ndarray) -> bool:
    """The points flagged ``high`` (well above the curve's running level) come one by one, as independent
    draws do: a high point is followed by another no more often than any point is high (plus
    ``SPIKE_CLUSTER``), and the previous point of a high one likewise. A batch with an outlier target
    (heavy-tailed data: Student-t or Cauchy noise, a log-normal target) spikes on its own and the next
    batch's loss is back at the level; weights knocked off by a too-large update stay off for several steps,
    so their high losses come in runs."""
    if len(high) < 10 or int(high.sum()) < 3:
        return False
    rate = float(np.mean(high))
    after = high[1:][high[:-1]]
    return after.size > 0 and float(np.mean(after)) <= rate + SPIKE_CLUSTER


def _held(mag: np.ndarray, i: int, scale: float) -> bool:
    """The explosion's peak at ``i`` is not one batch alone: two more of the points within ``HELD_WINDOW``
    steps of it are ``HELD_FACTOR`` x the scale too (the weights stay off, or the loss ramped up to it).
    One example far off the rest, drawn again by a sampler with replacement, spikes twice at most."""
    near = mag[max(0, i - HELD_WINDOW):i + HELD_WINDOW + 1]
    return int(np.sum(near >= HELD_FACTOR * scale)) >= 3


def _explosion(s: np.ndarray, v: np.ndarray, start: float) -> dict[str, Any] | None:
    finite = np.isfinite(v)
    signed = hovers_around_zero(v)
    if signed:
        rest = np.abs(v[1:][finite[1:]])  # (its first value, near zero by symmetry, is no scale)
        start = float(median1(rest)) if rest.size else 0.0
    elif math.isfinite(v[0]) and 0 < abs(v[0]) < abs(start):
        start = float(v[0])  # the loss before any update: the explosion may start at step 2
    scale = abs(start)
    if not finite.all():
        j = int(np.argmin(finite))
        if j >= 2 and scale > 0:
            before = np.abs(v[:j])
            grew = float(before.max()) / scale
            if grew >= 10.0:
                peak = float(v[:j][np.argmax(before)])
                return {"start_loss": start, "peak_loss": peak,
                        "growth": grew, "nonfinite_step": int(s[j]), "value": str(float(v[j])),
                        "steady_rise": _steady(before[1:]), "falls": _falls(start, peak)}
    if scale <= 0 or len(v) < 3:
        return None
    mag = np.where(finite, np.abs(v), 0.0)
    if not signed:
        mag[0] = 0.0
    factor = SIGNED_EXPLODE_FACTOR if signed else EXPLODE_FACTOR
    big = np.flatnonzero(mag >= factor * scale)
    held = [int(i) for i in big if _held(mag, int(i), scale)]
    if held:
        i = max(held, key=lambda k: mag[k])
        out = {"start_loss": start, "peak_loss": float(v[i]), "peak_step": int(s[i]),
               "growth": float(mag[i] / scale), "steady_rise": _steady(mag[1:i + 1]),
               "falls": _falls(start, float(v[i]))}
        if signed:
            out["signed"] = True
        return out
    return None


def _falls(start: float, peak: float) -> bool:
    """The loss ran off downwards, to large negative values: an objective unbounded below (a sign
    lost, a log-likelihood minimised), which no learning rate makes (a too-high one makes it rise)."""
    return peak < 0 and peak < start


def _on_its_way_down(v: np.ndarray, initial: float, end: float, baseline: float, k: int) -> bool:
    """Still above a constant prediction, but most of the way down from the first loss and still
    falling over the second half: a model early in training (a language model learning the token
    frequencies first), not one stuck at the priors (which sits at the constant prediction).
    Still falling: by over 2% of the constant prediction's loss, or by less through noise larger
    than that fall but with a downward trend no flat curve shows by chance (Mann-Kendall
    z <= ``STILL_DOWN_Z``, one-sided 1%)."""
    if not (end > 1.05 * baseline and initial - end >= 0.5 * (initial - baseline)):
        return False
    n = len(v)
    if float(median1(v[n // 2:n // 2 + k])) - end > 0.02 * baseline:
        return True
    return end < float(median1(v[n // 2:n // 2 + k])) and trend_z(v[n // 2:]) <= STILL_DOWN_Z


def still_falling(v: np.ndarray, sigma: float, scale: float) -> bool:
    """The second half of the curve keeps coming down: slow, steady progress, not a plateau.

    The medians of its four quarters must fall one after the other, by clearly more than the
    noise of such medians in all (a flat, noisy curve does this by chance well under 1% of the
    time), and by at least 0.5% of the loss's scale (a full-batch curve with a vanishing
    learning rate falls steadily too, by nothing).
    """
    half = v[len(v) // 2:]
    q = len(half) // 4
    if q < 4:
        return False
    meds = [float(median1(half[i * q:(i + 1) * q])) for i in range(4)]
    se = 1.25 * sigma / math.sqrt(q)
    drop = meds[0] - meds[-1]
    return (all(a > b for a, b in zip(meds, meds[1:])) and drop > 4.0 * math.sqrt(2.0) * se
            and drop >= 0.005 * scale)


def trend_z(v: np.ndarray) -> float:
    """Mann-Kendall's trend statistic: about N(0, 1) for a curve with no trend, well below -3
    for one that keeps falling, however noisy (it counts rises and falls between all pairs of
    points, so a descent too slow for medians of a few points to resolve still shows)."""
    n = len(v)
    if n < 10:
        return 0.0
    i, j = np.triu_indices(n, 1)
    s = float(np.sign(v[j] - v[i]).sum())
    return s / math.sqrt(n * (n - 1) * (2 * n + 5) / 18.0)


def staircase(smooth: np.ndarray, se: float) -> int:
    """How many jumps a loss rises in when it falls in between: 0 when it is not such a curve,
    -1 when it may be one but its latest jump is too recent to tell.

    A curriculum (data that gets harder stage by stage), new data, or learning-rate restarts
    make the loss jump up a few times and come down between the jumps, as training does.
    A flipped sign or a too-high learning rate makes it climb: no few jumps carry the rise,
    or it does not fall in between. ``smooth`` are block medians, ``se`` their standard error;
    a jump is a run of rising block medians (a jump may straddle two blocks).
    """
    m = len(smooth)
    if m < 8:
        return _coarse_jump(smooth, se)
    d = np.diff(smooth)
    rise = float(d[d > 0].sum())
    span = float(smooth.max() - smooth.min())
    thr = max(4.0 * math.sqrt(2.0) * se, 0.1 * span)
    tol = 2.0 * math.sqrt(2.0) * se
    runs: list[tuple[int, int, float]] = []  # (first diff, last diff, total rise) of rising runs
    i = 0
    while i < len(d):
        if d[i] > 0:
            j = i
            while j + 1 < len(d) and d[j + 1] > 0:
                j += 1
            runs.append((i, j, float(d[i:j + 1].sum())))
            i = j + 1
        else:
            i += 1
    jumps = [r for r in runs if r[2] > thr]
    if not jumps or len(jumps) > max(1, m // 4) or sum(r[2] for r in jumps) < 0.8 * rise:
        return 0
    bounds = [0] + [b for r in jumps for b in (r[0] + 1, r[1] + 1)] + [m]
    falling = 0
    for a, b in zip(bounds[::2], bounds[1::2]):  # the stretches between jumps
        seg = smooth[a:b]
        if len(seg) < 3:
            continue
        if float(seg[-1] - seg[0]) > tol:
            return 0  # a stretch between jumps that climbs too: not learning in between
        falling += float(seg[0] - seg[-1]) > tol
    if m - bounds[-2] < 3:
        return -1 if falling >= 1 else 0  # the latest jump: too recent to see the loss come down
    return len(jumps) if falling >= 2 else 0


def _coarse_jump(smooth: np.ndarray, se: float) -> int:
    """-1 (too early to tell) for a curve too coarse for :func:`staircase` (a live read of few points, block
    means of small batches) that jumped up and is coming down from the jump: fell before it, and ends
    clearly below its peak after it (a new task or new data under the same optimizer: continual learning,
    a second stage); the end of the run, with every step in, judges it. 0 otherwise (a steady climb ends
    at its peak)."""
    m = len(smooth)
    if m < 4:
        return 0
    top = int(np.argmax(smooth))
    tol = 2.0 * math.sqrt(2.0) * se
    fell_before = top >= 2 and float(smooth[0] - smooth[:top].min()) > tol
    coming_down = top < m - 1 and float(smooth[top] - smooth[-1]) > max(tol, 0.25 * float(smooth[top] - smooth[:top].min()))
    return -1 if fell_before and coming_down else 0


def _start_of(v: np.ndarray) -> float | None:
    """The curve's starting level: the median of its first five finite values (None for fewer than 3
    values, or no finite one among the first five)."""
    if len(v) < 3:
        return None
    head = v[:5][np.isfinite(v[:5])]
    return float(median1(head)) if head.size else None


def analyze(steps: list[int], values: list[float], baseline: float | None = None,
            min_points: int = 20) -> CurveAnalysis:
    """Find the four symptoms in a loss curve; ``baseline`` is the constant-predictor loss."""
    s, v = per_step(steps, values)
    out = CurveAnalysis(n=len(v))
    start = _start_of(v)
    if start is None:
        return out
    out.start = start
    out.initial = float(v[0])
    quarter = v[: max(3, len(v) // 4)]
    if np.isfinite(quarter).any():
        j = int(np.nanargmax(np.where(np.isfinite(quarter), quarter, np.nan)))
        out.early_peak, out.early_peak_step = float(quarter[j]), int(s[j])
    boom = _explosion(s, v, out.start)
    if boom is not None:
        out.symptoms["explodes"] = boom
    if hovers_around_zero(v):
        # no floor at zero: only an explosion against its own magnitude, or a non-finite value, is judged
        out.initial = out.early_peak = float("nan")
        out.signed = True
        return out
    finite = np.isfinite(v)
    if not finite.all():
        cut = int(np.argmin(finite))
        s, v = s[:cut], v[:cut]
    if len(v) < min_points:
        return out
    s, v = _thin(s, v)
    n = len(v)
    k = int(min(50, max(5, n // 8)))
    start, end = float(median1(v[:k])), float(median1(v[-k:]))
    smooth = block_median(v, max(3, k // 2))  # a coarse smoothed view: cheap and noise-robust
    sigma = noise_sigma(v)
    se = 1.25 * sigma / math.sqrt(k)  # standard error of a median over k points
    lo = float(smooth.min())
    out.start, out.end, out.minimum, out.sigma = start, end, lo, sigma
    scale = max(abs(start), 1e-12)
    level_noise = 4.0 * math.sqrt(2.0) * se
    # --- goes up: above where it started, or back up far above its minimum
    if end - start > max(level_noise, 0.1 * scale):
        out.symptoms["goes-up"] = {"start_loss": start, "end_loss": end, "min_loss": lo,
                                   "from_step": int(s[0]), "to_step": int(s[-1]), "noise": sigma}
    elif (lo > 0 and end > 1.5 * lo and end - lo > max(0.5 * (start - lo), level_noise)
          and start - lo > level_noise):
        at = int(s[min(int(np.argmin(smooth)) * max(3, k // 2), n - 1)])
        out.symptoms["goes-up"] = {"start_loss": start, "end_loss": end, "min_loss": lo,
                                   "min_step": at, "to_step": int(s[-1]), "noise": sigma,
                                   "after_learning": True}
    if "goes-up" in out.symptoms:
        jumps = staircase(smooth, 1.25 * sigma / math.sqrt(max(3, k // 2)))
        if jumps > 0:
            out.symptoms["goes-up"]["jumps_up"] = jumps
        elif jumps < 0:
            out.symptoms["goes-up"]["recent_jump"] = True
    no_progress = end >= start - max(level_noise, 0.25 * scale)
    if baseline is not None and baseline > 0 and end < 0.6 * baseline:
        no_progress = False
    # --- oscillates: wide swings around a level that does not come down, or a loss that keeps
    # jumping back above where it started (its median may look fine, its mean does not)
    half = v[n // 2:]
    if n >= 30 and len(half) >= 15 and abs(end) > 0 and "goes-up" not in out.symptoms:
        trend = rolling_median(half, 5)
        rel = np.abs(half - trend) / np.maximum(np.abs(trend), 1e-12)
        swing = float(median1(rel))
        wild = float(np.mean((half > 2.0 * np.abs(trend)) | (half < 0.5 * trend)))
        ref = max(start, out.initial)
        above = float(np.mean(half > 1.5 * ref)) if ref > 0 else 0.0
        mean_stuck = ref > 0 and float(np.mean(half)) >= 0.75 * start
        swings = no_progress and swing >= 0.3 and wild >= 0.15
        if swings or (mean_stuck and above >= 0.1):
            out.symptoms["oscillates"] = {"level": float(np.mean(half)), "median_swing": swing,
                                          "isolated_spikes": isolated_spikes(half, half > 2.0 * np.abs(trend)),
                                          "spikes_only": not swings,  # (the typical level may have come down)
                                          "wild_fraction": wild, "above_start_fraction": above,
                                          "low": float(np.percentile(half, 10)),
                                          "high": float(np.percentile(half, 90)),
                                          "from_step": int(s[n // 2]), "to_step": int(s[-1])}
    # --- plateaus: the level has not moved (beyond its noise) since the start, or sits flat
    # at (or above) the loss of a constant prediction
    at_zero = end == 0.0 and lo >= 0.0 and out.initial > 0.0  # a margin loss every example meets
    if n >= 30 and "oscillates" not in out.symptoms and "goes-up" not in out.symptoms and not at_zero:
        spread = float(smooth.max() - smooth.min())
        moved = max(start - end, spread)
        tol = max(level_noise, 0.03 * scale)
        tail = smooth[len(smooth) // 2:]
        stuck_high = (baseline is not None and baseline > 0 and end >= 0.95 * baseline
                      and end >= 0.5 * out.initial  # not a model that learned, then converged
                      and float(np.ptp(tail)) <= max(level_noise, 0.05 * baseline)
                      and float(tail[0] - tail[-1]) <= max(level_noise, 0.02 * baseline)
                      and not _on_its_way_down(v, out.initial, end, baseline, k))
        if moved <= tol or stuck_high:
            first = 0 if moved <= tol else n // 2
            ref = start if first == 0 else float(median1(v[first:first + k]))
            out.symptoms["plateaus"] = {"start_loss": ref, "end_loss": end,
                                        "change": (end - ref) / max(abs(ref), 1e-12), "noise": sigma,
                                        "from_step": int(s[first]), "to_step": int(s[-1]),
                                        "at_constant_prediction": bool(stuck_high),
                                        "still_falling": still_falling(v, sigma, scale),
                                        # moved more than 3% of its scale: flat only within its noise
                                        "within_noise": bool(tol >= moved > 0.03 * scale),
                                        "trend_z": round(trend_z(v[first:]), 2)}
    return out


def loss_progress(state: Any, min_losses: int) -> tuple[CurveAnalysis, float | None]:
    """The training curve's analysis and how far its loss fell as a share of where it started
    ((start - end) / start), or None with fewer than ``min_losses`` losses or no positive start."""
    curve = analyze_losses(state)
    if curve.n >= min_losses and curve.start > 0 and curve.end == curve.end:
        return curve, (curve.start - curve.end) / curve.start
    return curve, None


def analyze_losses(state: Any, min_points: int = 20) -> CurveAnalysis:
    """The (cached) analysis of ``state.losses``, shared by the lr, loss-curve and fit checks."""
    total = state.losses.total
    cached = state.extra.get("nndoctor.curve")
    if cached is not None and cached[0] == total and cached[1] == min_points:
        return cached[2]
    steps, values = state.losses.series()
    restart = last_restart(state)
    if restart is not None:
        # a new model (and optimizer) replaced the old, or a new stage began: judge its curve only (too
        # short a curve, just after the restart, is too short to judge: the loss before is another's)
        k = next((i for i, st in enumerate(steps) if st >= restart), len(steps))
        steps, values = steps[k:], values[k:]
    baseline = state.extra.get("nndoctor.loss_baseline")
    rows = state.extra.get(LOSS_ROWS_KEY)
    if rows and float(np.median(rows)) < AVERAGED_VALUES:
        result = _on_block_means(steps, values, baseline, min_points,
                                 math.ceil(AVERAGED_VALUES / max(float(np.median(rows)), 1.0)))
    else:
        result = analyze(steps, values, baseline, min_points)
    if not_an_objective(state):
        # a policy-gradient surrogate, or a loss with a term maximised through a gradient reversal: its
        # rises, swings and plateaus say nothing about progress (monitor/checks/surrogate.py,
        # monitor/checks/reversal.py); a loss that became non-finite still does
        boom = result.symptoms.get("explodes")
        result.symptoms = {"explodes": boom} if boom is not None and "nonfinite_step" in boom else {}
        result.initial = result.early_peak = float("nan")
    entropies = state.extra.get("nndoctor.soft_target_entropy")
    if entropies and len(entropies) >= 5:
        soft_target_swings(result, entropies)
    state.extra["nndoctor.curve"] = (total, min_points, result)
    return result


def _on_block_means(steps: list[int], values: list[float], baseline: float | None,
                    min_points: int, block: int) -> CurveAnalysis:
    """The analysis of a loss that averages few values (batches of 1-8 examples) redone on means of
    ``block`` consecutive losses: a single example's loss swings from near 0 to several times its
    level at convergence and its first value is one draw, so swings, jumps and "never below its first
    value" are judged on the means. An explosion or a non-finite loss is kept from the per-step curve."""
    s, v = per_step(steps, values)
    m = len(v) // block
    coarse = analyze([int(x) for x in s[block - 1:m * block:block]],
                     [float(x) for x in v[:m * block].reshape(m, block).mean(1)] if m else [],
                     baseline, min_points)
    start = _start_of(v)
    boom = _explosion(s, v, start) if start is not None else None
    if boom is not None:
        coarse.symptoms["explodes"] = boom
    coarse.n = len(v)
    return coarse


def not_an_objective(state: Any) -> bool:
    """The training loss's value does not measure progress: a policy-gradient surrogate, or a loss with
    a term maximised through a gradient reversal."""
    return surrogate_loss(state) or gradient_reversal(state)


def gradient_reversal(state: Any) -> bool:
    """Part of the training loss is maximised through a gradient reversal, seen at ``REVERSAL_SAMPLES``
    sampled backward calls (recorded under ``REVERSAL_KEY`` by monitor/checks/reversal.py)."""
    found = state.extra.get(REVERSAL_KEY)
    return bool(found) and found.get("samples", 0) >= REVERSAL_SAMPLES


def surrogate_loss(state: Any) -> bool:
    """The training loss is a policy-gradient surrogate, seen at ``SURROGATE_SAMPLES`` sampled
    backward calls (recorded under ``SURROGATE_KEY`` by monitor/checks/surrogate.py)."""
    found = state.extra.get(SURROGATE_KEY)
    return bool(found) and found.get("samples", 0) >= SURROGATE_SAMPLES


def soft_target_swings(out: CurveAnalysis, entropies: list[float]) -> None:
    """Drop the swings that soft targets explain. Cross entropy with probability targets is their
    entropy plus the KL divergence the model can reduce: with mixup the targets' entropy changes
    from batch to batch (0 for a pure label, ln 2 for an even mix), and the loss with it. A loss
    that oscillates, or comes back up, by no more than twice that spread says nothing about
    the learning rate or the labels."""
    h = np.asarray(entropies, dtype=np.float64)
    spread = float(np.percentile(h, 90) - np.percentile(h, 10))
    if spread <= 0:
        return
    osc = out.symptoms.get("oscillates")
    if osc is not None and osc["high"] - osc["low"] <= 2.0 * spread:
        del out.symptoms["oscillates"]
    up = out.symptoms.get("goes-up")
    if up is not None and up.get("after_learning") and up["end_loss"] - up["min_loss"] <= 2.0 * spread:
        del out.symptoms["goes-up"]
