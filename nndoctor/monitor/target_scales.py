"""Running statistics of regression targets and predictions, training vs evaluation.

Two checks read them: ``preprocessing.eval-targets-differ`` (evaluation targets scaled differently
from the training targets while the predictions are not) and ``fit`` (an evaluation loss written in
other units than the training loss: targets standardised for training, predictions mapped back to
the raw scale for the validation loss, is healthy, and its loss is not comparable with the training
loss until converted). Both feed the same :class:`TargetScales`, kept once per run in
``state.extra``; an event fed twice (by both checks) is counted once.

Kept per target shape (the dims after the batch), for regression losses (``mse_loss``,
``l1_loss``, ``smooth_l1_loss``, ``huber_loss``) whose prediction and target have the same shape, in
training (with gradients: sampled steps) and in evaluation (no gradient, the first ``EVAL_BUDGET``
batches).
"""

from __future__ import annotations

import math
import weakref
from dataclasses import dataclass, field
from typing import Any

import torch

from nndoctor.monitor.events import Targets
from nndoctor.monitor.tensors import local

__all__ = ["REGRESSION", "TargetScales", "eval_loss_scale", "target_scales"]

REGRESSION = frozenset({"mse_loss", "l1_loss", "smooth_l1_loss", "huber_loss"})
EVAL_BUDGET = 32
MAX_VALUES = 65_536
MAX_SHAPES = 8
#: the evaluation targets' std within this factor of the training targets': the same units
SAME_UNITS = 5.0
#: a loss that scales as (target units) ** power: converts an evaluation loss into the training units
POWER = {"mse_loss": 2.0, "l1_loss": 1.0}
KEY = "nndoctor.target_scales"


@dataclass
class Moments:
    n: int = 0
    total: float = 0.0
    sq: float = 0.0
    batches: int = 0

    def add(self, t: torch.Tensor) -> None:
        v = local(t).detach().reshape(-1)[:MAX_VALUES].double()
        v = v[torch.isfinite(v)]
        self.n += int(v.numel())
        self.total += float(v.sum())
        self.sq += float(v.square().sum())
        self.batches += 1

    @property
    def mean(self) -> float:
        return self.total / max(self.n, 1)

    @property
    def std(self) -> float:
        return math.sqrt(max(self.sq / max(self.n, 1) - self.mean ** 2, 0.0))


@dataclass
class Side:
    target: Moments = field(default_factory=Moments)
    pred: Moments = field(default_factory=Moments)


@dataclass
class TargetScales:
    train: dict[tuple[int, ...], Side] = field(default_factory=dict)
    eval: dict[tuple[int, ...], Side] = field(default_factory=dict)
    losses: dict[tuple[int, ...], str] = field(default_factory=dict)  # the first loss seen per shape
    eval_losses: dict[tuple[int, ...], str] = field(default_factory=dict)  # the first evaluation loss
    _last: Any = None  # weak reference to the latest event fed (two checks feed the same events)
    _last_key: tuple[int, ...] | None = None

    def feed(self, event: Targets) -> tuple[int, ...] | None:
        """Count a regression loss's targets and predictions; the key of its shape, or None when it is
        not one (or its side is full)."""
        if self._last is not None and self._last() is event:
            return self._last_key
        self._last, self._last_key = weakref.ref(event), None
        if event.name not in REGRESSION:
            return None
        inp, target = event.input, event.target
        if (not inp.is_floating_point() or not target.is_floating_point() or target.numel() < 2
                or inp.shape != target.shape or target.dim() == 0):
            return None
        key = tuple(target.shape[1:])
        sides = self.train if event.training else self.eval
        side = sides.get(key)
        if side is None:
            if len(sides) >= MAX_SHAPES:
                return None
            side = sides[key] = Side()
        if not event.training and side.target.batches >= EVAL_BUDGET:
            return None
        side.target.add(target)
        side.pred.add(inp)
        self.losses.setdefault(key, event.name)
        if not event.training:
            self.eval_losses.setdefault(key, event.name)
        self._last_key = key
        return key


    def add_eval(self, pred: torch.Tensor, target: torch.Tensor, loss: str) -> None:
        """A held-out pair the script compares without a loss function (a residual ``pred - target`` of
        its own metric, :mod:`nndoctor.monitor.residuals`), counted under the training shape it matches."""
        key = tuple(target.shape[1:])
        if key not in self.train:
            rows = [k for k in self.train if math.prod(k) == math.prod(key)]
            if len(rows) != 1:
                return
            key = rows[0]
        side = self.eval.get(key)
        if side is None:
            if len(self.eval) >= MAX_SHAPES:
                return
            side = self.eval[key] = Side()
        if side.target.batches >= EVAL_BUDGET:
            return
        side.target.add(target)
        side.pred.add(pred)
        self.eval_losses.setdefault(key, loss)


def target_scales(state: Any) -> TargetScales:
    """The run's :class:`TargetScales` (made on first use)."""
    scales = state.extra.get(KEY)
    if scales is None:
        scales = state.extra[KEY] = TargetScales()
    return scales


def eval_loss_scale(state: Any) -> float | None:
    """The factor that converts the run's evaluation losses into the training loss's units: 1.0 when
    the evaluation targets are on the training targets' scale (or unknown), ``(train std / eval std) **
    p`` for an MSE (p = 2) or L1 (p = 1) evaluation loss on another scale, None when the units differ
    and the loss does not scale that simply (Huber, smooth L1)."""
    scales: TargetScales | None = state.extra.get(KEY)
    if scales is None:
        return 1.0
    both = [k for k in scales.eval if k in scales.train and scales.eval[k].target.n and scales.train[k].target.n]
    if not both:
        return 1.0
    key = max(both, key=lambda k: scales.eval[k].target.batches)
    ts, es = scales.train[key].target.std, scales.eval[key].target.std
    if not (ts > 0 and es > 0 and math.isfinite(ts) and math.isfinite(es)):
        return 1.0
    ratio = es / ts
    if 1.0 / SAME_UNITS < ratio < SAME_UNITS:
        return 1.0
    power = POWER.get(scales.eval_losses.get(key, ""))
    return None if power is None else (1.0 / ratio) ** power
