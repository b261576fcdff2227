"""dtype: continuous values silently truncated to integers, then trained on as numbers.

A regression script built from a classification template converts its float targets with
``torch.tensor(y, dtype=torch.long)`` (or ``.long()``, ``.int()``, ``.to(torch.int64)``,
``torch.as_tensor(y, dtype=...)``): every value loses its fractional part without a warning, and a
later ``.float()`` for the loss hides it. The model learns a staircase.

Two halves, both seen by the function mode (data preparation before the first step included):

* the conversion: a float array/tensor (at least 8 values) becomes an integer tensor, at least half
  of its finite values had a fractional part, and the truncation error ``x - trunc(x)`` carries at
  least 2% of the values' variance (pixels scaled to 0-255 lose far less: quiet); its distinct
  results (up to 10,000) and its shape are kept;
* the use: the float target of a regression loss (``mse``/``l1``/``smooth_l1``/``huber``) or the
  float input of a model's training forward holds only whole numbers, at least two distinct ones,
  all among a truncation's results, with the same shape per example.

Binning on purpose (``(y * 10).long()`` into ``cross_entropy``) is never used as a number: quiet;
integer labels stored as floats (0.0/1.0) and whole-number targets (counts) were never truncated:
quiet. ``np.astype(int)`` happens outside torch and is not seen.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable

import numpy as np
import torch

from nndoctor.checks import Check, register
from nndoctor.findings import Finding
from nndoctor.monitor.events import LossCall, ModelInput, OpCall
from nndoctor.monitor.functions import user_site
from nndoctor.monitor.loose_input import INPUT_OPS, loose_input
from nndoctor.monitor.tensors import local

__all__ = ["ContinuousValuesTruncated", "truncation_loss"]

REGRESSION = frozenset({"mse_loss", "l1_loss", "smooth_l1_loss", "huber_loss"})
MIN_VALUES = 8
FRACTIONAL_SHARE = 0.5  # at least this share of the values had a fractional part
LOST_VARIANCE = 0.02  # the truncation error carries at least this share of the values' variance
MAX_UNIQUE = 10_000
MAX_STATS = 1_000_000  # values read for the statistics (strided beyond)
MAX_RECORDS = 16
_CONVERSIONS = frozenset({"tensor", "as_tensor", "long", "int", "short", "to", "type"})


@dataclass
class _Truncation:
    uniques: np.ndarray  # sorted distinct integer results
    shape: tuple[int, ...]  # per example (the dims after the first)
    numel: int
    site: str
    call: str
    lost: float
    fractional: float
    example: float
    dtype: str


def _trailing(shape: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(d for d in shape[1:] if d != 1)


def truncation_loss(x: np.ndarray) -> tuple[float, float, float] | None:
    """(share of values with a fractional part, share of the variance in x - trunc(x), an example
    value with a fractional part) of the finite values of ``x``; None if there are too few."""
    v = x.reshape(-1)
    if v.size > MAX_STATS:
        v = v[:: v.size // MAX_STATS + 1]
    v = v[np.isfinite(v)].astype(np.float64)
    if v.size < MIN_VALUES:
        return None
    err = v - np.trunc(v)
    frac = np.abs(err) > 1e-6
    var = float(v.var())
    if not var > 0:
        return None
    example = float(v[frac][0]) if frac.any() else float(v[0])
    return float(frac.mean()), float(err.var()) / var, example


def _source(event: OpCall, result: torch.Tensor) -> np.ndarray | None:
    src = event.args[0] if event.args else event.kwargs.get("data")
    if isinstance(src, torch.Tensor):
        if not src.is_floating_point() or src.is_complex():
            return None
        return local(src).detach().float().cpu().numpy()
    if event.name not in ("tensor", "as_tensor"):
        return None
    if isinstance(src, np.ndarray):
        return src if src.dtype.kind == "f" else None
    if isinstance(src, (list, tuple)) and result.numel() <= MAX_STATS:
        try:
            a = np.asarray(src)
        except (ValueError, TypeError):
            return None
        return a if a.dtype.kind == "f" else None
    return None


@register
class ContinuousValuesTruncated(Check):
    """Float values with fractional parts converted to integers, later trained on as numbers."""

    code = "dtype.continuous-values-truncated"
    needs = ("op", "loss", "model_input")
    sampled_only = frozenset({"model_input"})
    ops = _CONVERSIONS | INPUT_OPS  # (INPUT_OPS: the input of a network without nn.Module)

    def __init__(self, state: Any) -> None:
        super().__init__(state)
        self._records: list[_Truncation] = []
        self._done = False

    def check(self, event: OpCall | LossCall | ModelInput) -> Iterable[Finding]:
        if self._done:
            return ()
        if isinstance(event, OpCall):
            if event.name not in INPUT_OPS:
                self._on_conversion(event)
                return ()
            loose = loose_input(self.state, event)  # the input of a network without nn.Module
            if loose is None:
                return ()
            event = loose
        if not self._records:
            return ()
        if isinstance(event, LossCall):
            if event.name in REGRESSION and event.grad_enabled and isinstance(event.target, torch.Tensor):
                return self._used(event.target, f"the regression target of {event.name}", "target")
            return ()
        if event.sampled and event.grad_enabled and event.training:
            x = next((a for a in (*event.args, *event.kwargs.values()) if isinstance(a, torch.Tensor)), None)
            if x is not None:
                return self._used(x, f"the input of {event.name}", "input")
        return ()

    def _on_conversion(self, event: OpCall) -> None:
        result = event.result
        if (not isinstance(result, torch.Tensor) or result.is_floating_point() or result.is_complex()
                or result.dtype == torch.bool or result.numel() < MIN_VALUES or len(self._records) >= MAX_RECORDS):
            return
        src = _source(event, result)
        if src is None or src.size != result.numel():
            return
        stats = truncation_loss(src)
        if stats is None or stats[0] < FRACTIONAL_SHARE or stats[1] < LOST_VARIANCE:
            return
        uniques = np.unique(local(result).detach().reshape(-1).cpu().numpy())
        if uniques.size > MAX_UNIQUE:
            return
        call = f"torch.{event.name}(..., dtype={result.dtype})" if event.name in ("tensor", "as_tensor") \
            else f".{event.name}()" + (f" to {result.dtype}" if event.name in ("to", "type") else "")
        self._records.append(_Truncation(
            uniques=uniques.astype(np.float64), shape=_trailing(tuple(result.shape)), numel=int(result.numel()),
            site=user_site(), call=call, fractional=stats[0], lost=stats[1], example=stats[2],
            dtype=str(result.dtype).replace("torch.", "")))

    def _used(self, t: torch.Tensor, what: str, role: str) -> Iterable[Finding]:
        if not t.is_floating_point() or t.numel() < 2:
            return ()
        v = local(t).detach().reshape(-1)
        if not bool(torch.all(v == torch.round(v))):
            return ()
        values = np.unique(v.double().cpu().numpy())
        if values.size < 2:
            return ()
        shape = _trailing(tuple(t.shape))
        for rec in self._records:
            if rec.shape != shape or t.numel() > rec.numel:
                continue
            if not np.isin(values, rec.uniques).all():
                continue
            self._done = True
            self.retire()  # (its verdict is given: nothing more to hear but the end)
            ev = {"site": rec.site, "conversion": rec.call, "dtype": rec.dtype, "used_as": role,
                  "consumer": what, "fractional_share": round(rec.fractional, 3),
                  "variance_lost": round(rec.lost, 4), "example_value": rec.example,
                  "distinct_values": int(rec.uniques.size)}
            return [self.finding(
                f"{rec.call} at {rec.site or 'an unknown line'} truncated values with fractional parts "
                f"(e.g. {rec.example:.4g} -> {int(rec.example)}; {rec.fractional:.0%} of them, "
                f"{rec.lost:.0%} of their variance) to {rec.dtype}, and those whole numbers "
                f"({rec.uniques.size} distinct) are {what}: the model learns a staircase",
                ev, location=rec.site)]
        return ()
