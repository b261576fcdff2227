"""labels: segmentation masks (class-id maps) resized with a smoothing interpolation.

A mask of class ids must be resized with ``mode="nearest"``: bilinear, bicubic, linear, trilinear or
area interpolation (``F.interpolate``, or ``torchvision``'s tensor ``resize`` whose default is
bilinear) averages neighbouring ids. Along every object border the result is a value between two
classes; cast back with ``.long()`` (truncation) or ``.round()`` it becomes a class id of neither
region (between classes 0 and 2: a line of class 1 around every object) or erodes the objects, and
left as a float it is no class id at all. The model is trained on these borders as if they were labels.

Evidence: an ``interpolate`` call (function mode: sampled steps and the dense start of a run, so a
whole set of masks resized before training is seen) with a smoothing mode whose input needs no
gradient, holds integers only, with 2 to ``MAX_IDS`` distinct values, and whose output holds
non-integer values; its result is followed through indexing, casts, rounding, views, ``stack``/
``cat`` (a ``DataLoader``'s collation) to the TARGET of a loss on a training step. Two such training
steps make the warning. Nearest resizing, images resized bilinearly (model inputs, many values),
logits upsampled to the mask size (they carry a gradient) and soft targets (not integer) stay quiet.
"""

from __future__ import annotations

from typing import Any, Iterable

import torch

from nndoctor.checks import Check, register
from nndoctor.findings import Finding, Severity
from nndoctor.monitor.events import LossCall, OpCall, RunEnd
from nndoctor.monitor.functions import user_site
from nndoctor.monitor.marks import TensorMarks

__all__ = ["MAX_IDS", "MaskInterpolated", "SAMPLE", "class_map", "smoothing_mode"]

MAX_IDS = 64  # distinct values of a class-id map (more: an image, a depth map)
MIN_STEPS = 2
MIN_NUMEL = 64
SAMPLE = 1 << 20  # elements looked at
_SMOOTH = frozenset({"linear", "bilinear", "bicubic", "trilinear", "area"})
_CARRY = frozenset({"getitem", "select", "index_select", "long", "int", "short", "byte", "round", "floor", "trunc",
                    "to", "type", "squeeze", "unsqueeze", "view", "reshape", "clone", "contiguous", "permute",
                    "flatten", "clamp", "float", "detach", "cpu", "stack", "cat", "squeeze_", "unsqueeze_"})
_MAX_MARKS = 4096
_CLASS_LOSSES = frozenset({"cross_entropy", "nll_loss"})


def smoothing_mode(args: tuple[Any, ...], kwargs: dict[str, Any]) -> str | None:
    """The interpolation mode of an ``F.interpolate`` call when it averages neighbours, else None."""
    mode = kwargs.get("mode", args[3] if len(args) > 3 else "nearest")  # (input, size, scale_factor, mode)
    return mode if isinstance(mode, str) and mode in _SMOOTH else None


def _sample(x: torch.Tensor) -> torch.Tensor:
    """Up to ``SAMPLE`` evenly spaced elements of ``x`` (a whole data set resized at once stays cheap)."""
    flat = x.detach().reshape(-1)
    return flat if flat.numel() <= SAMPLE else flat[:: flat.numel() // SAMPLE + 1]


def class_map(x: torch.Tensor) -> int | None:
    """Number of distinct values when ``x`` holds integers only, 2 to ``MAX_IDS`` of them; else None
    (judged on up to ``SAMPLE`` elements)."""
    if x.numel() < MIN_NUMEL or x.requires_grad or x.dtype == torch.bool or x.is_complex():
        return None
    x = _sample(x)
    if x.is_floating_point() and (not bool(torch.isfinite(x).all()) or not bool((x == x.round()).all())):
        return None
    ids = torch.unique(x)
    return int(ids.numel()) if 2 <= ids.numel() <= MAX_IDS else None


@register
class MaskInterpolated(Check):
    """Class-id masks resized with bilinear/bicubic/area interpolation and used as loss targets."""

    code = "labels.mask-interpolated"
    needs = ("op", "loss", "end")
    ops = frozenset(_CARRY | {"interpolate"})

    def __init__(self, state: Any) -> None:
        super().__init__(state)
        self._marks: TensorMarks[dict[str, Any]] = TensorMarks(_MAX_MARKS)
        self._hits: list[dict[str, Any]] = []
        self._steps: set[int] = set()

    def check(self, event: Any) -> Iterable[Finding]:
        if event.kind == "op":
            if event.name == "interpolate":
                self._on_interpolate(event)
            elif self._marks:
                self._carry(event)
        elif event.kind == "loss":
            self._on_loss(event)
        elif event.kind == "end":
            return self._on_end(event)
        return ()

    def _on_interpolate(self, event: OpCall) -> None:
        mode = smoothing_mode(event.args, event.kwargs)
        x = event.args[0] if event.args else event.kwargs.get("input")
        out = event.result
        if mode is None or not isinstance(x, torch.Tensor) or not isinstance(out, torch.Tensor):
            return
        ids = class_map(x)
        if ids is None:
            return
        y = _sample(out)
        share = float((y != y.round()).float().mean())
        if share == 0.0:
            return  # (nothing averaged: a constant map, or an upscale by an integer factor of 1)
        self._marks.put(out, {"mode": mode, "ids": ids, "non_integer": round(share, 4),
                         "in_shape": tuple(x.shape), "out_shape": tuple(out.shape), "site": user_site(),
                         "step": event.step})

    def _carry(self, event: OpCall) -> None:
        result = event.result
        if isinstance(result, tuple) or not isinstance(result, torch.Tensor):
            return
        src = event.args[0] if event.args else None
        if event.name in ("stack", "cat") and isinstance(src, (list, tuple)):
            origin = next((o for o in (self._marks.get(a) for a in src[:8]) if o is not None), None)
        else:
            origin = self._marks.get(src)
        if origin is not None:
            self._marks.put(result, origin)

    def _on_loss(self, event: LossCall) -> None:
        if not event.grad_enabled or event.target is None or event.step in self._steps:
            return
        origin = self._marks.get(event.target)
        if origin is None:
            return
        self._steps.add(event.step)
        self._hits.append({**origin, "loss": event.name, "loss_step": event.step,
                           "target_dtype": str(event.target.dtype).replace("torch.", "")})

    def _on_end(self, event: RunEnd) -> list[Finding]:
        if len(self._hits) < MIN_STEPS:
            return []
        hit = self._hits[0]
        evidence = {**hit, "steps": len(self._hits)}
        soft = hit["target_dtype"].startswith(("float", "half", "bfloat"))
        cast = "as floats that are no class id" if soft else f"cast back to {hit['target_dtype']} class ids"
        # float targets of a non-class loss (BCE/MSE on a binary mask): soft borders, maybe meant
        severity = Severity.INFO if soft and hit["loss"] not in _CLASS_LOSSES else None
        return [self.finding(
            f"the targets of {hit['loss']} are class-id masks ({hit['ids']} ids) resized with mode='{hit['mode']}'"
            f"{' at ' + hit['site'] if hit['site'] else ''}: {hit['non_integer']:.1%} of the resized pixels fall "
            f"between two classes and are used {cast} (ids of neither neighbouring region, or eroded "
            f"objects, at every border); a mask must be resized with mode='nearest', in {len(self._hits)} training steps",
            evidence, location=hit["site"], step=hit["loss_step"], severity=severity)]
