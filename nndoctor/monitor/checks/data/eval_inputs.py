"""Evaluation inputs preprocessed differently from training inputs.

A script that normalises its training images (mean ~0, std ~1) but feeds the raw 0-255
test images, or standardises the training table and forgets the test table, gets
meaningless evaluation results with no error anywhere. This check keeps running
statistics of the first floating-point argument a root model receives in training
forwards (sampled steps) and in forwards without gradient (evaluation, inference), per
model, and compares them once both are known: a spread (std) that differs by 5x or
more, or an evaluation mean more than 3 training stds away from the training mean,
gives ``preprocessing.eval-inputs-differ``. Augmentation (noise, flips, crops) and
another split of the same data change the statistics by far less.

The same code reports evaluation batches standardised with their own statistics: every one of
at least ``PER_BATCH_MIN`` evaluation batches of a 2-D (rows x features) input has, per feature,
mean ~0 and std ~1 within the batch (``(xb - xb.mean(0)) / xb.std(0)`` in the evaluation loop)
while no sampled training batch does (training used fixed statistics). A warning when the
batches hold at most ``PER_BATCH_SMALL`` rows (their statistics are noisy, and a sorted test set
shifts them), info otherwise.

Two kinds of evaluation input are no evaluation of data and are not compared: a full grid of evenly
spaced points (``torch.linspace``/``arange``/``meshgrid`` over one to three features, every combination
once), which a script builds to draw its fitted function, often over a wider range than the training
inputs on purpose (extrapolation); and nothing but the rows read: a batch's statistics come from rows
spread evenly over it (a sorted batch's first rows are no sample of it).

Cost: training batches on sampled steps only; evaluation batches until a budget of
batches per model is spent (a slice of rows each).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Iterable

import torch

from nndoctor.checks import Check, register
from nndoctor.debug.preprocessing import feature_matrix, fmt
from nndoctor.findings import Finding, Severity
from nndoctor.monitor.checks.data.grid_inputs import is_grid, spread_rows
from nndoctor.monitor.checks.data.sample import first_tensor
from nndoctor.monitor.events import ModelInput, RunEnd
from nndoctor.monitor.tensors import local

__all__ = ["EvalInputScale", "InputStats", "scale_gap", "standardised_per_batch"]

#: batches of each side before judging (fewer at the end of the run)
MIN_BATCHES = 2
#: evaluation batches looked at per model
EVAL_BUDGET = 32
#: rows of one batch looked at
MAX_ROWS = 256
#: evaluation std / training std at or beyond this factor (either way) is another preprocessing
STD_RATIO = 5.0
#: an evaluation mean this many training stds from the training mean is another preprocessing
MEAN_SHIFT = 3.0
MIN_ROWS = 16
#: evaluation batches that must all be standardised with their own statistics
PER_BATCH_MIN = 3
#: ... a warning when they hold at most this many rows (info above)
PER_BATCH_SMALL = 64
PER_BATCH_TOL = 2e-3
@dataclass
class InputStats:
    """Running global and per-channel statistics of one side (training or evaluation)."""

    batches: int = 0
    rows: int = 0
    total: float = 0.0
    sq: float = 0.0
    count: int = 0
    lo: float = math.inf
    hi: float = -math.inf
    shape: tuple[int, ...] = ()
    csum: torch.Tensor | None = None
    csq: torch.Tensor | None = None
    crows: int = 0
    steps: list[int] = field(default_factory=list)

    def add(self, x: torch.Tensor, step: int) -> bool:
        flat, channels, _ = feature_matrix(spread_rows(x))
        if flat.numel() == 0:
            return False
        self.batches += 1
        self.rows += flat.shape[0]
        self.shape = tuple(x.shape)
        f = flat.double()
        f2 = f.square()
        lo, hi = torch.aminmax(flat)
        # (one host transfer: the sums in float64, the float extremes exactly in float64 too)
        total, sq, lo, hi = torch.stack([f.sum(), f2.sum(), lo.double(), hi.double()]).tolist()
        self.total += total
        self.sq += sq
        self.count += f.numel()
        self.lo, self.hi = min(self.lo, lo), max(self.hi, hi)
        # (a table's channels are its columns: flat itself, whose squares are at hand)
        c, c2 = (f, f2) if channels is flat else (channels.double(), None)
        c2 = c.square() if c2 is None else c2
        if self.csum is None or self.csum.shape[0] != c.shape[1]:
            self.csum, self.csq, self.crows = c.sum(0), c2.sum(0), c.shape[0]
        else:
            self.csum, self.csq = self.csum + c.sum(0), self.csq + c2.sum(0)
            self.crows += c.shape[0]
        if len(self.steps) < 2 or step != self.steps[-1]:
            self.steps = self.steps[:1] + [step]
        return True

    @property
    def mean(self) -> float:
        return self.total / max(self.count, 1)

    @property
    def std(self) -> float:
        return math.sqrt(max(self.sq / max(self.count, 1) - self.mean ** 2, 0.0))

    def channel_std(self) -> torch.Tensor | None:
        if self.csum is None or self.csq is None or self.crows < 2:
            return None
        m = self.csum / self.crows
        return (self.csq / self.crows - m.square()).clamp(min=0).sqrt()

    def describe(self) -> str:
        return f"mean {fmt(self.mean)}, std {fmt(self.std)}, range {fmt(self.lo)}..{fmt(self.hi)}"


def standardised_per_batch(x: torch.Tensor) -> bool | None:
    """Whether a (rows x features) batch has per-feature mean ~0 and std ~1 within itself (standardised
    with its own statistics); None when it cannot say (not 2-D, < 4 rows, < 2 varying features)."""
    if (x.dim() != 2 or x.shape[0] < 4 or x.shape[1] < 2 or not x.is_floating_point()
            or x.layout != torch.strided or x.device.type == "meta"):
        return None
    t = local(x).detach()[:MAX_ROWS].double()
    if t.dim() != 2 or t.shape[0] < 4:
        return None
    if _surely_not(t):
        return False
    sd0 = t.std(0, unbiased=False)
    keep = sd0 > 1e-3
    if int(keep.sum()) < 2:
        return None
    t = t[:, keep]
    if not bool((t.mean(0).abs() <= PER_BATCH_TOL).all()):
        return False  # (the means alone decide: the stds are not read)
    sd0, sd1 = t.std(0, unbiased=False), t.std(0, unbiased=True)
    return float(((sd0 - 1).abs() <= PER_BATCH_TOL).double().mean()) >= 0.9 or \
        float(((sd1 - 1).abs() <= PER_BATCH_TOL).double().mean()) >= 0.9


def _surely_not(t: torch.Tensor) -> bool:
    """True when a (rows x features) float64 batch is certainly not standardised per batch, read
    from per-column ranges and means (a min/max and a mean pass: a per-column std costs ~10x that on
    CPU). A column of ``n`` values spanning ``r`` has a std of at least ``r / sqrt(2n)``: a column over
    that bound is one :func:`standardised_per_batch` keeps, and two of them with one mean off zero
    give its answer, False (the margins leave rounding no say)."""
    n = t.shape[0]
    sure = (t.amax(0) - t.amin(0)) > 1e-3 * math.sqrt(2.0 * n) * (1 + 1e-6)
    off = sure & (t.mean(0).abs() > PER_BATCH_TOL * (1 + 1e-9))
    return int(sure.sum()) >= 2 and bool(off.any())


def scale_gap(train: InputStats, ev: InputStats) -> tuple[float, float, float | None] | None:
    """``(std ratio eval/train, mean shift in training stds, median per-channel std ratio)``, or
    None when either side is constant (nothing to compare)."""
    if train.std <= 0 or ev.std <= 0 or not math.isfinite(train.std) or not math.isfinite(ev.std):
        return None
    ratio = ev.std / train.std
    shift = abs(ev.mean - train.mean) / train.std
    per_channel = None
    ts, es = train.channel_std(), ev.channel_std()
    if ts is not None and es is not None and ts.shape == es.shape:
        keep = (ts > 0) & (es > 0)
        if bool(keep.any()):
            per_channel = float((es[keep] / ts[keep]).median())
    return ratio, shift, per_channel


@register
class EvalInputScale(Check):
    """A model's evaluation inputs are on another scale than its training inputs."""

    code = "preprocessing.eval-inputs-differ"
    needs = ("model_input", "eval_input", "end")
    sampled_only = frozenset({"model_input"})
    # (the training side's running statistics, a float64 pass over each batch: the reference
    # needs MIN_BATCHES training batches, not every sampled one, so it reads one sampled step in
    # two after the first; the evaluation batches are all read, as before)
    look_every = 2

    def __init__(self, state: Any) -> None:
        super().__init__(state)
        self._train: dict[int, InputStats] = {}
        self._eval: dict[int, InputStats] = {}
        self._names: dict[int, str] = {}
        self._done: set[int] = set()
        #: per model: [training batches judged, of them standardised per batch, evaluation batches
        #: judged, of them standardised per batch, evaluation rows]
        self._per_batch: dict[int, list[int]] = {}
        self._reported: set[int] = set()  # models with a scale finding (the per-batch one is then not made)

    def check(self, event: ModelInput | RunEnd) -> Iterable[Finding]:
        if isinstance(event, RunEnd):
            found = [f for key in list(self._eval) if key in self._train and key not in self._done
                     for f in self._judge(key, final=True)]
            return found + [f for key in list(self._per_batch) for f in self._judge_per_batch(key)]
        key = id(event.model)
        if event.kind == "model_input" and not event.grad_enabled:
            return ()
        self._note_per_batch(key, event)
        if key in self._done:
            return ()
        if event.kind == "model_input":
            if not event.grad_enabled:
                return ()  # the eval_input event of the same forward counts it
            side = self._train
        else:
            side = self._eval
            if key in side and side[key].batches >= EVAL_BUDGET:
                return ()
        x = first_tensor(event.args, event.kwargs)
        if x is None or not x.is_floating_point() or x.dim() < 2 or x.shape[0] < 1:
            return ()
        if side is self._eval and is_grid(x):
            return ()  # (points made to draw the fitted function, no evaluation of data)
        stats = side.get(key)
        if stats is None:
            stats = side[key] = InputStats()
        self._names.setdefault(key, event.name)
        if not stats.add(x, event.step):
            return ()
        train, ev = self._train.get(key), self._eval.get(key)
        if train is None or ev is None or min(train.batches, ev.batches) < MIN_BATCHES:
            return ()
        return self._judge(key, final=False)

    def _note_per_batch(self, key: int, event: ModelInput) -> None:
        counts = self._per_batch.get(key)
        if counts is None:
            if len(self._per_batch) >= 16:
                return
            counts = self._per_batch[key] = [0, 0, 0, 0, 0]
        training = event.kind == "model_input"
        if (counts[0] if training else counts[2]) >= EVAL_BUDGET:
            return
        x = first_tensor(event.args, event.kwargs)
        try:  # (a tensor kind this cannot read must not switch off the scale comparison)
            flag = standardised_per_batch(x) if x is not None else None
        except (RuntimeError, TypeError, ValueError):
            flag = None
        if flag is None:
            return
        self._names.setdefault(key, event.name)
        if training:
            counts[0] += 1
            counts[1] += int(flag)
        else:
            counts[2] += 1
            counts[3] += int(flag)
            counts[4] += int(x.shape[0])  # type: ignore[union-attr]

    def _judge_per_batch(self, key: int) -> list[Finding]:
        train_n, train_pb, eval_n, eval_pb, rows = self._per_batch[key]
        if key in self._reported or train_n < MIN_BATCHES or train_pb or eval_n < PER_BATCH_MIN or eval_pb < eval_n:
            return []
        model = self._names.get(key, "model")
        mean_rows = rows / eval_n
        evidence = {"model": model, "kind": "per-batch", "eval_batches": eval_n, "train_batches": train_n,
                    "eval_rows_per_batch": round(mean_rows, 1), "train": "fixed statistics",
                    "eval": "each batch standardised with its own mean/std"}
        return [self.finding(
            f"{model}'s evaluation batches are each standardised with their own statistics: all {eval_n} "
            f"evaluation batches ({mean_rows:.0f} rows on average) have per-feature mean 0 and std 1 within the "
            f"batch, while none of {train_n} sampled training batches do; evaluation inputs then depend on which "
            f"rows share a batch (normalise them with the training set's mean/std)",
            evidence, location=model, severity=None if mean_rows <= PER_BATCH_SMALL else Severity.INFO)]

    def _judge(self, key: int, *, final: bool) -> list[Finding]:
        train, ev = self._train[key], self._eval[key]
        if train.rows < MIN_ROWS or ev.rows < MIN_ROWS or (not final and ev.batches < MIN_BATCHES):
            return []
        self._done.add(key)
        gap = scale_gap(train, ev)
        if gap is None:
            return []
        ratio, shift, per_channel = gap
        scaled = ratio >= STD_RATIO or ratio <= 1.0 / STD_RATIO
        if per_channel is not None and ev.shape[1:] == train.shape[1:]:
            scaled = scaled and (per_channel >= STD_RATIO / 2 or per_channel <= 2.0 / STD_RATIO)
        if not scaled and shift < MEAN_SHIFT:
            return []
        model = self._names.get(key, "model")
        self._reported.add(key)
        why = []
        if scaled:
            why.append(f"a {fmt(ratio)}x {'larger' if ratio > 1 else 'smaller'} spread")
        if shift >= MEAN_SHIFT:
            why.append(f"a mean {fmt(shift)} training stds away")
        evidence = {"model": model, "train": train.describe(), "eval": ev.describe(),
                    "train_mean": round(train.mean, 4), "train_std": round(train.std, 4),
                    "eval_mean": round(ev.mean, 4), "eval_std": round(ev.std, 4),
                    "std_ratio": round(ratio, 3), "mean_shift_in_train_stds": round(shift, 2),
                    "per_channel_std_ratio_median": round(per_channel, 3) if per_channel is not None else None,
                    "train_batches": train.batches, "eval_batches": ev.batches,
                    "train_shape": train.shape, "eval_shape": ev.shape, "eval_steps": ev.steps}
        return [self.finding(
            f"{model}'s evaluation inputs are preprocessed differently from its training inputs: training "
            f"{train.describe()} ({train.batches} sampled batches) vs evaluation (no gradient) {ev.describe()} "
            f"({ev.batches} batches), {' and '.join(why)}; the evaluation results say little about the "
            f"trained model (e.g. normalised for training only, raw 0-255 values at test time)",
            evidence, location=model)]
