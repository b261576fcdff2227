"""Crash rules for ``F.binary_cross_entropy`` / ``nn.BCELoss``, which checks its arguments' range.

torch raises ``all elements of target should be between 0 and 1`` when the targets are class ids
of a multi-class problem (0, 1, 2), 1-based labels (1, 2), {0, 255} masks or -1/+1 labels, and
``all elements of input should be between 0 and 1`` when the model's output is raw scores (no
sigmoid after the last layer, as a Keras port of ``loss='binary_crossentropy'`` on a linear output
reads). Both die at the first step: the explainer names what the values are and the repair.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import torch

from nndoctor.debug.preprocessing import fmt
from nndoctor.findings import Finding

if TYPE_CHECKING:
    from nndoctor.debug.crash import CrashExplainer, _Ctx

__all__ = ["BCE_RULES"]

#: at most this many distinct values are listed in the message
_SHOWN = 6


def _values(t: Any) -> torch.Tensor | None:
    if not isinstance(t, torch.Tensor) or t.numel() == 0 or not t.is_floating_point() or t.is_cuda:
        return None
    return t.detach().flatten()[:65536].float()


def _loss_name(ctx: _Ctx) -> str:
    return f"F.{ctx.op.name}" if ctx.op is not None else "F.binary_cross_entropy"


def _target_range(chk: CrashExplainer, ctx: _Ctx, m: re.Match[str]) -> Finding | None:
    t = _values(ctx.arg(1, "target"))
    if t is None or not bool(torch.isfinite(t).all()):
        return None
    lo, hi = t.min().item(), t.max().item()
    vals = torch.unique(t[:4096]).tolist()
    shown = ", ".join(fmt(v) for v in vals[:_SHOWN]) + (", ..." if len(vals) > _SHOWN else "")
    ints = all(float(v).is_integer() for v in vals)
    inp = ctx.arg(0, "input")
    outputs = int(inp.shape[-1]) if isinstance(inp, torch.Tensor) and inp.dim() >= 1 else None
    loss = _loss_name(ctx)
    if ints and lo == 0 and hi >= 2 and len(vals) >= 3 and outputs == 1:
        k = int(hi) + 1
        what = f"class ids 0..{int(hi)} of a {k}-class problem, but the model has one (sigmoid) output"
        fix = (f"Use {k} outputs (nn.Linear(..., {k})) without a sigmoid and nn.CrossEntropyLoss with long "
               f"targets (y.long(), shape (N,)); BCE scores one yes/no question per output.")
    elif ints and len(vals) == 2 and lo == 1:
        what = f"1-based binary labels {{{shown}}}"
        fix = f"y = y - 1 (labels {fmt(lo)}/{fmt(hi)} become 0/1)."
    elif ints and len(vals) <= 2 and lo == 0 and hi > 1:
        what = f"a binary target coded {{{shown}}} (a mask saved as 0/{fmt(hi)})"
        fix = f"y = (y > 0).float() (or y / {fmt(hi)})."
    elif ints and len(vals) == 2 and lo == -1 and hi == 1:
        what = "-1/+1 labels (a margin-loss coding)"
        fix = "y = (y + 1) / 2 (labels -1/1 become 0/1)."
    else:
        what = f"values from {fmt(lo)} to {fmt(hi)}"
        fix = f"Scale the targets into [0, 1]: y = (y - {fmt(lo)}) / ({fmt(hi)} - {fmt(lo)}), or threshold them."
    msg = (f"{loss} needs targets in [0, 1] (probabilities of the positive class) but got {{{shown}}}: "
           f"{what}")
    return chk.explain("preprocessing.crash-target-out-of-range", ctx, msg, fix, target_min=lo, target_max=hi,
                       target_values=[fmt(v) for v in vals[:8]], loss=loss)


def _input_range(chk: CrashExplainer, ctx: _Ctx, m: re.Match[str]) -> Finding | None:
    x = _values(ctx.arg(0, "input"))
    if x is None or not bool(torch.isfinite(x).all()):
        return None  # NaN/Inf from a diverged run: the numerics checks say why
    lo, hi = x.min().item(), x.max().item()
    if lo >= 0.0 and hi <= 1.0:
        return None
    loss = _loss_name(ctx)
    neg = float((x < 0).float().mean().item())
    msg = (f"{loss} needs probabilities in [0, 1] but the model's output ranges from {fmt(lo)} to {fmt(hi)} "
           f"({neg:.0%} negative): raw scores (logits), as from a last nn.Linear without a sigmoid")
    fix = ("Use nn.BCEWithLogitsLoss (F.binary_cross_entropy_with_logits) on the raw output: it applies the "
           "sigmoid itself, stably; or end the model with nn.Sigmoid() and keep BCELoss.")
    return chk.explain("loss-input.crash-bce-input-not-probabilities", ctx, msg, fix, input_min=lo,
                       input_max=hi, negative_share=round(neg, 3), loss=loss)


#: (pattern, rule) pairs appended to the crash explainer's rules
BCE_RULES = [
    (re.compile(r"all elements of target should be between 0 and 1"), _target_range),
    (re.compile(r"all elements of input should be between 0 and 1"), _input_range),
]
