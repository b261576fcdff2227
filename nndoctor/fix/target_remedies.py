"""Runtime remedies for an output activation on the wrong axis or of the wrong kind, for
binary targets outside [0, 1], for padding counted by the loss, for class-id masks resized with a
smoothing interpolation and for noisy labels. Same contract as :mod:`nndoctor.fix.remedies`
(``install(finding, stack)`` changes the run through hooks; the stack undoes it)."""

from __future__ import annotations

import contextlib
import functools
from typing import Any, Callable

import torch
import torch.nn.functional as F

from nndoctor.fix.remedies import Remedy, _patch, _where

__all__ = ["TARGET_REMEDIES"]

Finding = dict[str, Any]
_SOFTMAX = ("softmax", "log_softmax")


def _dim_of(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    return kwargs.get("dim", args[0] if args else None)


def _patch_softmax(stack: contextlib.ExitStack,
                   replace: Callable[[Callable[..., Any], str, torch.Tensor, Any, tuple[Any, ...], dict[str, Any]], Any]
                   ) -> None:
    """Route every softmax/log_softmax call (functional, ``torch.``, tensor method; ``nn.Softmax``
    calls ``F.softmax``) through ``replace(original, name, x, dim, args, kwargs)``."""
    for name in _SOFTMAX:
        def wrap(original: Callable[..., Any], name: str = name) -> Callable[..., Any]:
            @functools.wraps(original)
            def call(x: Any, *args: Any, **kwargs: Any) -> Any:
                if not isinstance(x, torch.Tensor) or x.dim() < 1:
                    return original(x, *args, **kwargs)
                return replace(original, name, x, _dim_of(args, kwargs), args, kwargs)

            return call

        for owner in (F, torch, torch.Tensor):
            if hasattr(owner, name):
                _patch(stack, owner, name, wrap)


def _matches(x: torch.Tensor, shape: tuple[int, ...]) -> bool:
    """The finding's tensor: same rank and the same sizes after the batch dimension."""
    return bool(shape) and x.dim() == len(shape) and tuple(x.shape[1:]) == tuple(shape[1:])


def _install_softmax_over_classes(f: Finding, stack: contextlib.ExitStack) -> None:
    """A softmax over dim 0 (the batch) of the finding's tensor is taken over dim 1 (the classes)."""
    shape = tuple(f.get("evidence", {}).get("input_shape") or ())
    if len(shape) < 2:
        raise ValueError("the finding names no 2-d (or wider) input shape")

    def replace(original: Callable[..., Any], name: str, x: torch.Tensor, dim: Any, args: tuple[Any, ...],
                kwargs: dict[str, Any]) -> Any:
        if _matches(x, shape) and isinstance(dim, int) and dim % x.dim() == 0:
            rest = {k: v for k, v in kwargs.items() if k != "dim"}
            return original(x, 1, *args[1:], **rest)
        return original(x, *args, **kwargs)

    _patch_softmax(stack, replace)


def _install_sigmoid(f: Finding, stack: contextlib.ExitStack) -> None:
    """The softmax of the finding's tensor (over one unit, or against multi-hot targets) becomes
    an element-wise sigmoid (log_softmax: logsigmoid): each output is its own probability."""
    ev = f.get("evidence", {})
    shape = tuple(ev.get("input_shape") or ())
    want = ev.get("dim")
    if len(shape) < 2:
        raise ValueError("the finding names no input shape")

    def replace(original: Callable[..., Any], name: str, x: torch.Tensor, dim: Any, args: tuple[Any, ...],
                kwargs: dict[str, Any]) -> Any:
        if _matches(x, shape) and isinstance(dim, int) and (not isinstance(want, int)
                                                           or dim % x.dim() == want % x.dim()):
            return F.logsigmoid(x) if name == "log_softmax" else torch.sigmoid(x)
        return original(x, *args, **kwargs)

    _patch_softmax(stack, replace)


_BCE = ("binary_cross_entropy", "binary_cross_entropy_with_logits")


def _install_rescale_bce_target(f: Finding, stack: contextlib.ExitStack) -> None:
    """Targets of BCE losses outside [0, 1] are mapped onto [0, 1] with the finding's measured
    range: (t - min) / (max - min) ({0, 255} masks -> {0, 1}, labels {1, 2} -> {0, 1}, {-1, 1}
    -> {0, 1}); targets already in [0, 1] are untouched."""
    ev = f.get("evidence", {})
    try:
        lo, hi = float(ev["target_min"]), float(ev["target_max"])
    except (KeyError, TypeError, ValueError):
        raise ValueError("the finding names no target range") from None
    if not hi > lo:
        raise ValueError("the finding's target range is empty")

    def wrap(original: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(original)
        def loss(input: Any, target: Any, *args: Any, **kwargs: Any) -> Any:
            if isinstance(target, torch.Tensor) and target.is_floating_point() and target.numel():
                with torch.no_grad():
                    outside = bool((target < 0).any()) or bool((target > 1).any())
                if outside:
                    target = ((target - lo) / (hi - lo)).clamp(0.0, 1.0)
            return original(input, target, *args, **kwargs)

        return loss

    for name in _BCE:
        _patch(stack, F, name, wrap)


def _rows_sum_to_one(x: torch.Tensor) -> bool:
    return bool(torch.allclose(x.sum(-1), torch.ones((), dtype=x.dtype), atol=1e-3))


def _install_kl_div(f: Finding, stack: contextlib.ExitStack) -> None:
    """KL divergence gets what it expects: probabilities passed as its input become their log
    (rows >= 0 summing to 1); a log-probability target (rows <= 0 whose exp sums to 1) is read
    with ``log_target=True``. Inputs that already are log-probabilities are untouched."""
    target_fix = f.get("code") == "loss-input.log-probabilities-as-kl-div-target"

    def wrap(original: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(original)
        def kl_div(input: Any, target: Any, *args: Any, **kwargs: Any) -> Any:
            if not (isinstance(input, torch.Tensor) and isinstance(target, torch.Tensor) and input.dim() >= 1
                    and input.is_floating_point() and target.is_floating_point()):
                return original(input, target, *args, **kwargs)
            with torch.no_grad():
                if target_fix:
                    fix = (len(args) < 4 and not kwargs.get("log_target") and bool((target <= 0).all())
                           and _rows_sum_to_one(target.detach().exp()))
                else:
                    fix = bool((input >= 0).all()) and _rows_sum_to_one(input.detach())
            if fix and target_fix:
                kwargs["log_target"] = True
            elif fix:
                input = input.clamp_min(1e-12).log()
            return original(input, target, *args, **kwargs)

        return kl_div

    _patch(stack, F, "kl_div", wrap)


# -- labels ----------------------------------------------------------------------------------
def _install_ignore_padding(f: Finding, stack: contextlib.ExitStack) -> None:
    """cross_entropy / nll_loss called with the default ignore_index get the padding target."""
    try:
        pad = int(f.get("evidence", {})["pad_target"])
    except (KeyError, TypeError, ValueError):
        raise ValueError("the finding names no padding target") from None

    def wrap(original: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(original)
        def call(input: Any, target: Any, *args: Any, **kwargs: Any) -> Any:
            if len(args) < 3 and kwargs.get("ignore_index", -100) == -100:   # (weight, size_average, ignore_index)
                kwargs["ignore_index"] = pad
            return original(input, target, *args, **kwargs)

        return call

    _patch(stack, F, "cross_entropy", wrap)
    _patch(stack, F, "nll_loss", wrap)


def _install_nearest_mask_resize(f: Finding, stack: contextlib.ExitStack) -> None:
    """F.interpolate of a class-id map (gradient-free, integers only, 2..64 values; the finding's
    spatial size) with a smoothing mode resizes it with mode='nearest'; images and logits are left alone."""
    from nndoctor.debug.mask_resize import class_map, smoothing_mode

    spatial = tuple(f.get("evidence", {}).get("in_shape") or ())[2:]
    if not spatial:
        raise ValueError("the finding names no mask shape")

    def wrap(original: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(original)
        def interpolate(input: Any, *args: Any, **kwargs: Any) -> Any:
            if not (isinstance(input, torch.Tensor) and tuple(input.shape[2:]) == spatial
                    and smoothing_mode((input, *args), kwargs) is not None and class_map(input) is not None):
                return original(input, *args, **kwargs)
            named = dict(zip(("size", "scale_factor", "mode", "align_corners", "recompute_scale_factor"), args))
            named.update(kwargs)
            return original(input, size=named.get("size"), scale_factor=named.get("scale_factor"), mode="nearest",
                            recompute_scale_factor=named.get("recompute_scale_factor"))

        return interpolate

    _patch(stack, F, "interpolate", wrap)


TARGET_REMEDIES: tuple[Remedy, ...] = (
    Remedy("softmax-over-classes", ("loss-input.softmax-over-batch-dim",),
           lambda f: f"the softmax at {_where(f)} taken over dim 1 (the classes) instead of dim 0 (the batch)",
           lambda f: f"Use dim=1 (or dim=-1) in the softmax at {_where(f)}: dim=0 normalises across the batch.",
           _install_softmax_over_classes),
    Remedy("sigmoid-instead-of-softmax",
           ("loss-input.softmax-over-one-unit", "loss-input.softmax-multi-label-targets"),
           lambda f: f"the softmax at {_where(f)} replaced by an element-wise sigmoid",
           lambda f: f"Use torch.sigmoid instead of softmax at {_where(f)} (better: drop it and use "
                     "BCEWithLogitsLoss on the raw outputs).",
           _install_sigmoid),
    Remedy("rescale-bce-target", ("preprocessing.bce-target-out-of-range",),
           lambda f: f"BCE targets mapped from {f.get('evidence', {}).get('target_min', '?')}.."
                     f"{f.get('evidence', {}).get('target_max', '?')} onto 0..1",
           lambda f: f"Map the targets onto [0, 1] where they are made: "
                     f"{f.get('evidence', {}).get('suggestion', 'y = y / y.max()')}.",
           _install_rescale_bce_target),
    Remedy("kl-div-log-inputs",
           ("loss-input.probabilities-into-kl-div", "loss-input.log-probabilities-as-kl-div-target"),
           lambda f: ("KL divergence reads its log-probability target with log_target=True"
                      if f.get("code") == "loss-input.log-probabilities-as-kl-div-target"
                      else "KL divergence gets the log of the probabilities as its input"),
           lambda f: ("Pass log_target=True to KLDivLoss / F.kl_div (the target is log-probabilities)."
                      if f.get("code") == "loss-input.log-probabilities-as-kl-div-target"
                      else "Give KLDivLoss / F.kl_div log-probabilities: F.log_softmax(student_logits, dim=-1) "
                           "instead of softmax."),
           _install_kl_div),
    Remedy("ignore-padding", ("labels.padding-not-ignored",),
           lambda f: f"the loss ignores the padding target {f.get('evidence', {}).get('pad_target', '?')}",
           lambda f: f"Pass ignore_index={f.get('evidence', {}).get('pad_target', 'PAD')} to "
                     f"{f.get('evidence', {}).get('loss', 'the loss')} (or set the targets at padded positions "
                     "to -100).",
           _install_ignore_padding, changes_loss=True,
           applies=lambda f: isinstance(f.get("evidence", {}).get("pad_target"), int)),
    Remedy("nearest-mask-resize", ("labels.mask-interpolated",),
           lambda f: f"the class-id masks resized with mode='nearest' instead of "
                     f"'{f.get('evidence', {}).get('mode', 'bilinear')}'",
           lambda f: f"Resize the masks with mode='nearest' at {f.get('evidence', {}).get('site') or 'the resize'} "
                     "(F.interpolate(mask[:, None].float(), size, mode='nearest').long()[:, 0]).",
           _install_nearest_mask_resize,
           applies=lambda f: len(f.get("evidence", {}).get("in_shape") or ()) >= 3),
)
