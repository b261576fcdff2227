"""Runtime remedies for a bug at one line of the user's code: a ``view`` that scrambles axes,
uint8 arithmetic that wraps around, class ids scaled like pixels, a hand-written penalty that
outweighs the data loss. Same contract as :mod:`nndoctor.fix.remedies`: ``install(finding,
stack)`` changes the re-run through patched torch functions, the stack undoes it.

A remedy that names a call site (``evidence.site``, ``train.py:41``) acts only on calls made from
that line (:func:`nndoctor.monitor.functions.user_site`), so the same operation elsewhere in the
script (a legitimate reshape, uint8 arithmetic that stays in range) is untouched.
"""

from __future__ import annotations

import contextlib
import functools
import math
from typing import Any, Callable

import torch
import torch.nn.functional as F

from nndoctor.fix.remedies import Remedy, _patch

__all__ = ["SITE_REMEDIES", "axes_permutation"]

Finding = dict[str, Any]


def _ev(f: Finding) -> dict[str, Any]:
    return f.get("evidence") or {}


def _site(f: Finding) -> str:
    site = str(_ev(f).get("site") or "")
    if not site or site == "?":
        raise ValueError("the finding names no call site")
    return site


def _at(site: str) -> bool:
    from nndoctor.monitor.functions import user_site

    return user_site() == site


# -- view -> permute ---------------------------------------------------------------------
def axes_permutation(before: tuple[int, ...], after: tuple[int, ...]) -> tuple[int, ...] | None:
    """The permutation ``p`` with ``before[p[j]] == after[j]`` when the sizes are the same in
    another order and the sizes above 1 are distinct (so the permutation is unambiguous;
    size-1 axes keep their relative order); else None."""
    if len(before) != len(after) or sorted(before) != sorted(after) or before == after:
        return None
    big = [s for s in before if s > 1]
    if len(set(big)) != len(big):
        return None
    ones = [i for i, s in enumerate(before) if s == 1]
    perm = []
    for size in after:
        perm.append(ones.pop(0) if size == 1 else before.index(size))
    return tuple(perm)


def _install_permute(f: Finding, stack: contextlib.ExitStack) -> None:
    """``x.view(sizes)`` / ``x.reshape(sizes)`` at the finding's line that only reorders the
    sizes of ``x`` becomes ``x.permute(...)`` (contiguous): the values move with their axes."""
    site = _site(f)

    def wrap(original: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(original)
        def call(x: Any, *args: Any, **kwargs: Any) -> Any:
            out = original(x, *args, **kwargs)
            if isinstance(x, torch.Tensor) and isinstance(out, torch.Tensor) and x.dim() >= 2:
                perm = axes_permutation(tuple(x.shape), tuple(out.shape))
                if perm is not None and _at(site):
                    return x.permute(perm).contiguous()
            return out

        return call

    _patch(stack, torch.Tensor, "view", wrap)
    _patch(stack, torch.Tensor, "reshape", wrap)
    _patch(stack, torch, "reshape", wrap)


# -- uint8 arithmetic in float ------------------------------------------------------------
_ARITH = ("__sub__", "__rsub__", "__add__", "__radd__", "__mul__", "__rmul__", "sub", "add", "mul")


def _install_float_first(f: Finding, stack: contextlib.ExitStack) -> None:
    """uint8 ``-``/``+``/``*`` at the finding's line is computed in float32 (the tensor converted
    first, as ``x.float() - 128``), so nothing wraps modulo 256."""
    site = _site(f)

    def uint8_ints(args: tuple[Any, ...]) -> bool:
        tensors = [a for a in args[:2] if isinstance(a, torch.Tensor)]
        return any(t.dtype == torch.uint8 for t in tensors) and not any(t.is_floating_point() for t in tensors)

    def wrap(original: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(original)
        def call(*args: Any, **kwargs: Any) -> Any:
            if uint8_ints(args) and _at(site):
                args = tuple(a.float() if isinstance(a, torch.Tensor) and a.dtype == torch.uint8 else a
                             for a in args)
            return original(*args, **kwargs)

        return call

    for name in _ARITH:
        _patch(stack, torch.Tensor, name, wrap)
    for name in ("sub", "subtract", "add", "mul", "multiply"):
        _patch(stack, torch, name, wrap)


# -- class ids scaled like pixels -----------------------------------------------------------
_VALUE_LOSSES = ("binary_cross_entropy", "binary_cross_entropy_with_logits", "mse_loss", "l1_loss",
                 "smooth_l1_loss", "huber_loss")


def _scaled_ids(t: Any) -> bool:
    """Float targets that are all k/255 for small class ids k (0..63), not all 0."""
    if not isinstance(t, torch.Tensor) or not t.is_floating_point() or t.numel() == 0:
        return False
    ids = t.detach().float() * 255.0
    return (bool((ids >= -1e-3).all()) and float(ids.max()) <= 63 + 1e-3 and float(ids.max()) >= 1 - 1e-3
            and bool(((ids - ids.round()).abs() <= 1e-3).all()))


def _install_unscale_labels(f: Finding, stack: contextlib.ExitStack) -> None:
    """A value loss (BCE, MSE, L1) whose float targets are class ids divided by 255 gets the
    class ids back (targets x 255, rounded)."""
    def wrap(original: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(original)
        def call(input: Any, target: Any, *args: Any, **kwargs: Any) -> Any:
            if _scaled_ids(target):
                target = (target * 255.0).round()
            return original(input, target, *args, **kwargs)

        return call

    for name in _VALUE_LOSSES:
        _patch(stack, F, name, wrap)


# -- a hand-written penalty scaled down -------------------------------------------------------
_DATA_LOSSES = ("cross_entropy", "nll_loss", "binary_cross_entropy", "binary_cross_entropy_with_logits",
                "mse_loss", "l1_loss", "smooth_l1_loss", "huber_loss", "kl_div")


def _sum_terms(root: Any, limit: int = 64) -> set[Any]:
    """The autograd nodes summed at the top of a graph (through ``AddBackward0`` nodes)."""
    out, todo = set(), [root]
    while todo and len(out) < limit:
        node = todo.pop()
        if node is not None and type(node).__name__ == "AddBackward0":
            todo.extend(n for n, _ in node.next_functions)
        elif node is not None:
            out.add(node)
    return out


def penalty_scale(f: Finding) -> float:
    """How much the penalty is scaled: to about 1% of the data loss at the measured ratio
    (penalty / data loss), and at least 10x down."""
    try:
        ratio = float(_ev(f).get("ratio"))
    except (TypeError, ValueError):
        ratio = 10.0
    ratio = ratio if math.isfinite(ratio) and ratio > 0 else 10.0
    return min(0.1, 0.01 / ratio)


def _install_scale_penalty(f: Finding, stack: contextlib.ExitStack) -> None:
    """``backward()`` of ``data_loss + penalty`` back-propagates ``data_loss + s * penalty``: the
    data losses are the loss-function results of this step summed at the top of the graph, the
    penalty is the rest. A loss without such a sum is left alone."""
    scale = penalty_scale(f)
    recorded: list[torch.Tensor] = []

    def record(original: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(original)
        def call(*args: Any, **kwargs: Any) -> Any:
            out = original(*args, **kwargs)
            if isinstance(out, torch.Tensor) and out.requires_grad and out.grad_fn is not None:
                recorded.append(out)
                del recorded[:-16]
            return out

        return call

    def backward(original: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(original)
        def call(self: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
            data = list(recorded)
            recorded.clear()
            if self.numel() == 1 and self.grad_fn is not None and data:
                terms = _sum_terms(self.grad_fn)
                data = [d for d in data if d.grad_fn in terms]
                if data and len(terms) > len(data):
                    total = data[0]
                    for d in data[1:]:
                        total = total + d
                    self = self * scale + total * (1.0 - scale)
            return original(self, *args, **kwargs)

        return call

    for name in _DATA_LOSSES:
        _patch(stack, F, name, record)
    _patch(stack, torch.Tensor, "backward", backward)


SITE_REMEDIES: tuple[Remedy, ...] = (
    Remedy("permute-not-view", ("shape.view-scrambles-axes",),
           lambda f: f"the {_ev(f).get('op', 'view')} at {_ev(f).get('site', '?')} moves the axes (permute) "
                     "instead of re-reading the memory",
           lambda f: f"Use .permute(...) (or .transpose) instead of .{_ev(f).get('op', 'view')}"
                     f"({_ev(f).get('after')}) at {_ev(f).get('site', '?')}: view only re-labels the memory.",
           _install_permute, applies=lambda f: bool(_site(f))),
    Remedy("float-before-arithmetic", ("dtype.uint8-wraparound",),
           lambda f: f"the uint8 `{_ev(f).get('symbol', '-')}` at {_ev(f).get('site', '?')} computed in float32",
           lambda f: f"Convert to float before the arithmetic at {_ev(f).get('site', '?')}: "
                     f"x.float() {_ev(f).get('symbol', '-')} ... (uint8 wraps modulo 256).",
           _install_float_first, applies=lambda f: bool(_site(f))),
    Remedy("unscale-labels", ("preprocessing.labels-scaled-like-pixels",),
           lambda f: f"the targets of {_ev(f).get('loss', 'the loss')} multiplied back by 255 (class ids)",
           lambda f: "Scale only the inputs by 1/255, not the labels: keep the class ids as they are"
                     + (f" (the loss at {_ev(f)['site']})." if _ev(f).get("site") else "."),
           _install_unscale_labels),
    Remedy("scale-penalty-down", ("regularization.loss-penalty-too-strong",),
           lambda f: f"the {_ev(f).get('kind', 'parameter')} penalty in the loss scaled by {penalty_scale(f):.2g}",
           lambda f: f"Multiply the penalty coefficient in the loss by about {penalty_scale(f):.2g} "
                     "(or use the optimizer's weight_decay=1e-4 instead).",
           _install_scale_penalty, changes_loss=True),
)
