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
from nndoctor.findings import Finding
from nndoctor.monitor.checks.data.sample import first_tensor
from nndoctor.monitor.events import ModelInput, RunEnd

__all__ = ["EvalInputScale", "InputStats", "scale_gap"]

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
        flat, channels, _ = feature_matrix(x[:MAX_ROWS])
        if flat.numel() == 0:
            return False
        self.batches += 1
        self.rows += flat.shape[0]
        self.shape = tuple(x.shape)
        f = flat.double()
        self.total += float(f.sum())
        self.sq += float(f.square().sum())
        self.count += f.numel()
        self.lo, self.hi = min(self.lo, float(flat.min())), max(self.hi, float(flat.max()))
        c = channels.double()
        if self.csum is None or self.csum.shape[0] != c.shape[1]:
            self.csum, self.csq, self.crows = c.sum(0), c.square().sum(0), c.shape[0]
        else:
            self.csum, self.csq = self.csum + c.sum(0), self.csq + c.square().sum(0)
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

    def __init__(self, state: Any) -> None:
        super().__init__(state)
        self._train: dict[int, InputStats] = {}
        self._eval: dict[int, InputStats] = {}
        self._names: dict[int, str] = {}
        self._done: set[int] = set()

    def check(self, event: ModelInput | RunEnd) -> Iterable[Finding]:
        if isinstance(event, RunEnd):
            return [f for key in list(self._eval) if key in self._train and key not in self._done
                    for f in self._judge(key, final=True)]
        key = id(event.model)
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
        stats = side.setdefault(key, InputStats())
        self._names.setdefault(key, event.name)
        if not stats.add(x, event.step):
            return ()
        train, ev = self._train.get(key), self._eval.get(key)
        if train is None or ev is None or min(train.batches, ev.batches) < MIN_BATCHES:
            return ()
        return self._judge(key, final=False)

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
