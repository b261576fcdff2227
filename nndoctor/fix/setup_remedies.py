"""Runtime remedies for a choice made when the training is set up: a full-batch optimizer
(Rprop, L-BFGS) stepped on mini-batches, input-noise augmentation that drowns the signal, float
values truncated to integers by a conversion. Same contract as :mod:`nndoctor.fix.remedies`:
``install(finding, stack)`` changes the re-run through patched torch names, the stack undoes it.

Each acts only where the finding measured the bug: the optimizer class it named, the lines that
drew the noise, the line that converted the values; the same calls elsewhere are untouched.
"""

from __future__ import annotations

import contextlib
import functools
import math
from typing import Any, Callable

import numpy as np
import torch

from nndoctor.fix.remedies import Remedy, _patch

__all__ = ["SETUP_REMEDIES", "minibatch_lr", "noise_scale"]

Finding = dict[str, Any]


def _ev(f: Finding) -> dict[str, Any]:
    return f.get("evidence") or {}


def _at(sites: frozenset[str]) -> bool:
    from nndoctor.monitor.functions import user_site

    return user_site() in sites


# -- a full-batch optimizer on mini-batches -> Adam ---------------------------------------------
_FULL_BATCH = ("Rprop", "LBFGS")


#: Rprop's default initial step size: the largest Adam rate the remedy gives (Adam's steps are about
#: lr per weight, as Rprop's first steps are, but they do not shrink when the gradient's sign flips)
_RPROP_LR = 1e-2
_ADAM_LR = 1e-3  # torch's default Adam rate: for L-BFGS, whose lr scales a quasi-Newton step instead


def minibatch_lr(cls_name: str, lr: Any) -> float:
    """Adam's rate in place of a full-batch method's: Rprop's initial per-weight step size (the
    same unit as Adam's per-weight step), at most Rprop's default 0.01; torch's default 1e-3 for
    L-BFGS."""
    try:
        value = float(lr)
    except (TypeError, ValueError):
        value = _RPROP_LR
    if cls_name != "Rprop" or not (math.isfinite(value) and value > 0):
        return _ADAM_LR if cls_name != "Rprop" else _RPROP_LR
    return min(value, _RPROP_LR)


def _install_minibatch_optimizer(f: Finding, stack: contextlib.ExitStack) -> None:
    """Every optimizer of the finding's full-batch class (Rprop, L-BFGS) the script creates is an
    Adam over the same parameter groups with torch's other Adam defaults, at the rate
    :func:`minibatch_lr` gives for each group. The class keeps its name in the ``torch.optim``
    namespace, so ``isinstance`` checks and ``step(closure)`` still work."""
    cls_name = str(_ev(f).get("optimizer_class") or "")
    if cls_name not in _FULL_BATCH:
        raise ValueError(f"no mini-batch replacement for the optimizer class {cls_name!r}")

    class Adam(torch.optim.Adam):  # the name the re-run's report shows
        def __init__(self, params: Any, *args: Any, **kwargs: Any) -> None:
            lr = minibatch_lr(cls_name, kwargs.get("lr", args[0] if args else _RPROP_LR))
            groups = list(params)
            if groups and isinstance(groups[0], dict):  # per-group settings of the old method dropped
                groups = [{"params": g["params"], **({"lr": minibatch_lr(cls_name, g["lr"])} if "lr" in g else {})}
                          for g in groups]
            super().__init__(groups, lr=lr)

    import torch.optim.lbfgs as lbfgs_module
    import torch.optim.rprop as rprop_module

    module = rprop_module if cls_name == "Rprop" else lbfgs_module
    _patch(stack, torch.optim, cls_name, lambda _old: Adam)
    _patch(stack, module, cls_name, lambda _old: Adam)


# -- input noise too strong -> scaled down at the lines that draw it -------------------------------
#: the noise-to-signal ratio the noise is brought down to (ordinary augmentation: a fraction of the
#: inputs' spread; regularization.input-noise-too-strong reports from 1.5)
_TARGET_RATIO = 0.3


def noise_scale(f: Finding) -> float:
    """The factor on the noise that brings the measured noise/spread ratio to 0.3 (at most 1)."""
    try:
        ratio = float(_ev(f)["noise_ratio"])
    except (KeyError, TypeError, ValueError):
        raise ValueError("the finding names no measured noise ratio") from None
    if not (math.isfinite(ratio) and ratio > 0):
        raise ValueError("the finding names no measured noise ratio")
    return min(1.0, _TARGET_RATIO / ratio)


def _scale_text(f: Finding) -> str:
    try:
        return f"{noise_scale(f):.2g}"
    except ValueError:
        return "the measured ratio's inverse"


def _noise_sites(f: Finding) -> frozenset[str]:
    sites = [s for s in (_ev(f).get("drawn_at") or []) if isinstance(s, str) and s]
    site = _ev(f).get("site")
    if isinstance(site, str) and site:
        sites.append(site)
    if not sites:
        raise ValueError("the finding names no line that draws the noise")
    return frozenset(sites)


def _install_less_noise(f: Finding, stack: contextlib.ExitStack) -> None:
    """Random tensors drawn at the finding's lines (``randn``/``randn_like``/``rand``/``rand_like``
    /``normal``, in-place ``normal_``/``uniform_``) are shrunk about their distribution's centre by
    :func:`noise_scale` while gradients are on (the training steps); draws elsewhere, and draws at
    those lines with gradients off (data made under ``no_grad``), are untouched."""
    scale, sites = noise_scale(f), _noise_sites(f)

    def shrink(out: Any, centre: Any) -> Any:
        if isinstance(out, torch.Tensor) and out.is_floating_point() and torch.is_grad_enabled() and _at(sites):
            with torch.no_grad():
                out.sub_(centre).mul_(scale).add_(centre)
        return out

    def about(centre_of: Callable[..., Any]) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        def wrap(original: Callable[..., Any]) -> Callable[..., Any]:
            @functools.wraps(original)
            def call(*args: Any, **kwargs: Any) -> Any:
                return shrink(original(*args, **kwargs), centre_of(*args, **kwargs))

            return call

        return wrap

    def normal_centre(*args: Any, **kwargs: Any) -> Any:
        mean = args[0] if args else kwargs.get("mean", 0.0)
        return mean.detach() if isinstance(mean, torch.Tensor) else mean

    def inplace_centre(low: str, high: str, defaults: tuple[float, float], mean: bool) -> Callable[..., Any]:
        def centre(self: Any, *args: Any, **kwargs: Any) -> float:
            a = args[0] if args else kwargs.get(low, defaults[0])
            b = args[1] if len(args) > 1 else kwargs.get(high, defaults[1])
            return float(a) if mean else (float(a) + float(b)) / 2

        return centre

    for name in ("randn", "randn_like"):
        _patch(stack, torch, name, about(lambda *a, **k: 0.0))
    for name in ("rand", "rand_like"):
        _patch(stack, torch, name, about(lambda *a, **k: 0.5))
    _patch(stack, torch, "normal", about(normal_centre))
    _patch(stack, torch.Tensor, "normal_", about(inplace_centre("mean", "std", (0.0, 1.0), mean=True)))
    _patch(stack, torch.Tensor, "uniform_", about(inplace_centre("from", "to", (0.0, 1.0), mean=False)))


# -- continuous values truncated -> kept as floats -----------------------------------------------
_INT_DTYPES = (torch.int8, torch.int16, torch.int32, torch.int64, torch.uint8)


def _fractional(data: Any) -> bool:
    """Float values (a tensor, an array, a list) of which some have a fractional part."""
    if isinstance(data, torch.Tensor):
        t = data.detach()
        return t.is_floating_point() and t.numel() > 0 and bool((t[torch.isfinite(t)] % 1 != 0).any())
    try:
        a = np.asarray(data)
    except Exception:  # noqa: BLE001 - not array-like: nothing to keep
        return False
    if a.dtype.kind != "f" or a.size == 0:
        return False
    finite = a[np.isfinite(a)]
    return bool((finite % 1 != 0).any())


def _float_dtype(data: Any) -> torch.dtype:
    if isinstance(data, torch.Tensor) and data.is_floating_point():
        return data.dtype
    return torch.get_default_dtype()


def _install_keep_float(f: Finding, stack: contextlib.ExitStack) -> None:
    """At the finding's line, a conversion of float values with fractional parts to an integer
    dtype (``torch.tensor(y, dtype=torch.long)``, ``torch.as_tensor``, ``.long()``/``.int()``/
    ``.short()``, ``.to(torch.int64)``, ``.type(torch.long)``) keeps them as floats (the tensor's
    float dtype, else torch's default); whole numbers and other lines convert as written."""
    site = str(_ev(f).get("site") or "")
    if not site:
        raise ValueError("the finding names no line that converts the values")
    sites = frozenset({site})

    def truncates(data: Any, dtype: Any) -> bool:
        return dtype in _INT_DTYPES and _at(sites) and _fractional(data)

    def factory(original: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(original)
        def call(data: Any, *args: Any, **kwargs: Any) -> Any:
            if args and isinstance(args[0], torch.dtype):  # as_tensor(data, torch.long)
                kwargs["dtype"], args = args[0], args[1:]
            if truncates(data, kwargs.get("dtype")):
                kwargs["dtype"] = _float_dtype(data)
            return original(data, *args, **kwargs)

        return call

    def cast(dtype: torch.dtype) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        def wrap(original: Callable[..., Any]) -> Callable[..., Any]:
            @functools.wraps(original)
            def call(self: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
                if truncates(self, dtype):
                    return self
                return original(self, *args, **kwargs)

            return call

        return wrap

    def to_dtype(original: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(original)
        def call(self: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
            dtype = kwargs.get("dtype", next((a for a in args if isinstance(a, torch.dtype)), None))
            if truncates(self, dtype):
                kwargs.pop("dtype", None)
                args = tuple(a for a in args if not isinstance(a, torch.dtype))
                return original(self, *args, **kwargs) if args or kwargs else self
            return original(self, *args, **kwargs)

        return call

    for name in ("tensor", "as_tensor"):
        _patch(stack, torch, name, factory)
    for name, dtype in (("long", torch.int64), ("int", torch.int32), ("short", torch.int16)):
        _patch(stack, torch.Tensor, name, cast(dtype))
    _patch(stack, torch.Tensor, "to", to_dtype)
    _patch(stack, torch.Tensor, "type", to_dtype)


def _less_noise(name: str, code: str, what: str, why: str) -> Remedy:
    """The remedy that scales the noise drawn at a finding's lines down to 0.3 of the spread of ``what``."""
    return Remedy(name, (code,),
                  lambda f: f"the noise added to the {what} at {_ev(f).get('site') or 'the training step'} scaled "
                            f"by {_scale_text(f)} (to 0.3 of their spread)",
                  lambda f: f"Multiply the noise's std at {_ev(f).get('site') or 'the training step'} by about "
                            f"{_scale_text(f)}: {why}.",
                  _install_less_noise, applies=lambda f: bool(_noise_sites(f)) and noise_scale(f) < 1)


SETUP_REMEDIES: tuple[Remedy, ...] = (
    Remedy("adam-for-minibatches", ("optimizer.full-batch-method-on-minibatches",),
           lambda f: f"{_ev(f).get('optimizer_class', 'the full-batch optimizer')} replaced by Adam (Rprop's "
                     "initial step size as its rate, at most 0.01; 1e-3 for L-BFGS)",
           lambda f: f"Use an optimizer made for mini-batches where {_ev(f).get('optimizer', 'the optimizer')} is "
                     f"created: torch.optim.Adam(model.parameters(), lr=1e-2 or lower) instead of "
                     f"{_ev(f).get('optimizer_class', 'Rprop')} (or keep it and train on the full batch).",
           _install_minibatch_optimizer, applies=lambda f: _ev(f).get("optimizer_class") in _FULL_BATCH),
    _less_noise("less-input-noise", "regularization.input-noise-too-strong", "training inputs",
                "noise augmentation is a fraction of the inputs' spread"),
    _less_noise("less-target-noise", "labels.target-noise-too-strong", "regression targets",
                "noise on the targets only adds variance to the gradient"),
    Remedy("keep-float-values", ("dtype.continuous-values-truncated",),
           lambda f: f"the {_ev(f).get('conversion', 'conversion')} at {_ev(f).get('site', '?')} keeps the "
                     "values as floats",
           lambda f: f"Keep the values as floats at {_ev(f).get('site', 'the conversion')}: dtype=torch.float32 "
                     f"(not {_ev(f).get('dtype', 'an integer dtype')}).",
           _install_keep_float, applies=lambda f: bool(_ev(f).get("site"))),
)
