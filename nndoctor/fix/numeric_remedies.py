"""Runtime remedies for non-finite values made at one line of the user's code, and for a loss that
is a log-likelihood instead of its negative. Same contract as :mod:`nndoctor.fix.remedies`
(``install(finding, stack)`` changes the re-run through hooks; the stack undoes it).

The op the finding located runs guarded only where it is called from the finding's line (the
user's frame, :func:`nndoctor.monitor.functions.user_site`): ``log`` of a softmax (sigmoid) becomes
``log_softmax`` (``logsigmoid``) of its input, other arguments are kept inside the op's domain
(``log(x.clamp_min(1e-8))``, a denominator kept away from 0, ``exp`` below overflow...). For a
gradient that turns non-finite at a line (``sqrt`` at 0 has an infinite derivative), the forward
values are untouched and only the non-finite entries of the gradient those ops send back are
zeroed (the derivative at the edge of the domain taken as 0).
"""

from __future__ import annotations

import contextlib
import functools
import math
import re
import weakref
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode

from nndoctor.fix.remedies import Remedy, _patch

__all__ = ["NUMERIC_REMEDIES", "guarded_op"]

Finding = dict[str, Any]

_EPS = 1e-8
#: the forward guards: the op's normalised name -> its kind
_FORWARD = {"log": "log", "log2": "log", "log10": "log", "log1p": "log1p", "sqrt": "sqrt", "rsqrt": "positive",
            "reciprocal": "rdenominator", "div": "denominator", "true_divide": "denominator",
            "truediv": "denominator", "rdiv": "rdenominator", "rtruediv": "rdenominator", "pow": "pow",
            "exp": "exp", "acos": "unit", "asin": "unit", "atanh": "unit", "masked_fill": "fill"}
#: ops with an infinite derivative somewhere in their domain (the gradient guard's ops)
_STEEP = frozenset({"sqrt", "rsqrt", "pow", "rpow", "norm", "linalg_vector_norm", "linalg_norm", "vector_norm",
                    "log", "log2", "log10", "log1p", "div", "true_divide", "truediv", "rdiv", "rtruediv",
                    "reciprocal", "acos", "asin", "atanh", "cdist", "pdist", "pairwise_distance", "normalize",
                    "cosine_similarity", "std", "var", "atan2", "erfinv"})
_PROB_OPS = frozenset({"softmax", "sigmoid"})
_SITE = re.compile(r"Cell In\[\d+\], line \d+|[^,\s][^,]*?:\d+")


def guarded_op(f: Finding) -> str:
    """The normalised name of the op a ``numerics.nonfinite-forward`` finding located, when it has
    a forward guard (``torch.log`` -> ``log``); else ''."""
    op = str((f.get("evidence") or {}).get("op") or "").rsplit(".", 1)[-1].strip("_")
    return op if op in _FORWARD else ""


def _sites(f: Finding) -> frozenset[str]:
    """The ``file:line`` sites a finding names: ``evidence.site`` (up to 3, comma-separated), else
    a location that is a site."""
    ev = f.get("evidence") or {}
    text = str(ev.get("site") or "") if f.get("code") == "numerics.nonfinite-forward" else str(f.get("location") or "")
    return frozenset(_SITE.findall(text))


def _name(func: Callable[..., Any]) -> str:
    from nndoctor.monitor.functions import op_name

    return op_name(func).strip("_")


def _finite_grad(t: torch.Tensor) -> torch.Tensor:
    """An alias of ``t`` whose incoming gradient has its non-finite entries zeroed."""
    alias = t.view_as(t)
    alias.register_hook(lambda g: torch.where(torch.isfinite(g), g, torch.zeros_like(g)))
    return alias


def _away_from_zero(d: Any) -> Any:
    if not isinstance(d, torch.Tensor) or not d.is_floating_point():
        return d
    small = d.abs() < _EPS
    return torch.where(small, torch.where(d < 0, -_EPS, _EPS).to(d.dtype), d)


class _Guard(TorchFunctionMode):
    """Runs the guarded ops of the user's lines ``sites`` safely: ``forward`` the ops of that kind
    with their arguments kept in the domain; ``steep`` ops with their gradients kept finite."""

    def __init__(self, sites: frozenset[str], forward: str, steep: bool) -> None:
        super().__init__()
        self.sites, self.steep = sites, steep
        family = {_FORWARD[forward]} if forward else set()
        if family & {"denominator", "rdenominator"}:
            family |= {"denominator", "rdenominator"}
        #: the ops guarded in the forward: the located op and its other spellings (a / b, torch.div)
        self.forward_ops = frozenset(n for n, k in _FORWARD.items() if k in family
                                     and (k != "log" or n == forward))
        self.made: dict[int, tuple[weakref.ref[torch.Tensor], str, torch.Tensor, Any]] = {}

    def _record(self, kind: str, out: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        if not isinstance(out, torch.Tensor) or not args or not isinstance(args[0], torch.Tensor):
            return
        dim = kwargs.get("dim", args[1] if len(args) > 1 else None)
        self.made[id(out)] = (weakref.ref(out), kind, args[0], dim)
        while len(self.made) > 16:
            self.made.pop(next(iter(self.made)))

    def _origin(self, x: Any) -> tuple[str, torch.Tensor, Any] | None:
        entry = self.made.get(id(x))
        if entry is None or entry[0]() is not x:
            return None
        return entry[1], entry[2], entry[3]

    def __torch_function__(self, func, types, args=(), kwargs=None):  # type: ignore[override]
        kwargs = kwargs or {}
        name = _name(func)
        if name in _PROB_OPS:
            out = func(*args, **kwargs)
            self._record(name, out, args, kwargs)
            return out
        kind = _FORWARD.get(name) if name in self.forward_ops else None
        if kind is None and not (self.steep and name in _STEEP):
            return func(*args, **kwargs)
        from nndoctor.monitor.functions import user_site

        if user_site() not in self.sites:
            return func(*args, **kwargs)
        if kind is not None:
            return self._domain(kind, name, func, args, kwargs)
        return func(*(_finite_grad(a) if isinstance(a, torch.Tensor) and a.requires_grad else a for a in args),
                    **kwargs)

    def _domain(self, kind: str, name: str, func: Callable[..., Any], args: tuple[Any, ...],
                kwargs: dict[str, Any]) -> Any:
        x, rest = (args[0], args[1:]) if args else (None, ())
        if kind == "log" and name == "log":
            origin = self._origin(x)
            if origin is not None and origin[0] == "softmax" and isinstance(origin[2], int):
                return F.log_softmax(origin[1], dim=origin[2])
            if origin is not None and origin[0] == "sigmoid":
                return F.logsigmoid(origin[1])
        if not isinstance(x, torch.Tensor) or not x.is_floating_point():
            if kind == "rdenominator" and isinstance(x, torch.Tensor):
                return func(x, *rest, **kwargs)
            return func(*args, **kwargs)
        if kind == "log":
            return func(x.clamp_min(_EPS), *rest, **kwargs)
        if kind == "log1p":
            return func(x.clamp_min(-1 + 1e-6), *rest, **kwargs)
        if kind == "sqrt":
            return func(_finite_grad(x.clamp_min(0)) if x.requires_grad else x.clamp_min(0), *rest, **kwargs)
        if kind == "positive":
            return func(x.clamp_min(_EPS), *rest, **kwargs)
        if kind == "denominator" and rest:
            return func(x, _away_from_zero(rest[0]), *rest[1:], **kwargs)
        if kind == "rdenominator":
            return func(_away_from_zero(x), *rest, **kwargs)
        if kind == "pow" and rest and isinstance(rest[0], (int, float)) and (rest[0] < 0 or rest[0] != int(rest[0])):
            return func(x.clamp_min(_EPS), *rest, **kwargs)
        if kind == "exp":
            return func(x.clamp(max=math.log(torch.finfo(x.dtype).max) - 1), *rest, **kwargs)
        if kind == "unit":
            return func(x.clamp(-1 + 1e-6, 1 - 1e-6), *rest, **kwargs)
        if kind == "fill" and len(rest) >= 2 and isinstance(rest[1], (int, float)) and math.isinf(rest[1]):
            big = torch.finfo(x.dtype).max
            return func(x, rest[0], -big if rest[1] < 0 else big, *rest[2:], **kwargs)
        return func(*args, **kwargs)


def _install_guard(f: Finding, stack: contextlib.ExitStack) -> None:
    sites = _sites(f)
    if not sites:
        raise ValueError("the finding names no line of the user's code")
    forward = guarded_op(f) if f.get("code") == "numerics.nonfinite-forward" else ""
    if f.get("code") == "numerics.nonfinite-forward" and not forward:
        raise ValueError("no guard known for the op the finding names")
    stack.enter_context(_Guard(sites, forward, steep=True))


# -- a log-likelihood minimised ------------------------------------------------------------------
def _install_negate_log_likelihood(f: Finding, stack: contextlib.ExitStack) -> None:
    """``backward()`` of a scalar loss whose graph is a log-likelihood (an even number of sign
    flips down to log-probabilities: :func:`nndoctor.monitor.checks.loss_sign.log_likelihood_chain`)
    back-propagates its negative, the negative log-likelihood; any other loss is untouched."""
    from nndoctor.monitor.checks.loss_sign import log_likelihood_chain

    def flipped(t: Any) -> bool:
        if not isinstance(t, torch.Tensor) or t.numel() != 1 or t.grad_fn is None:
            return False
        found = log_likelihood_chain(t.grad_fn)
        return found is not None and found[1]

    def backward(original: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(original)
        def call(self: torch.Tensor, gradient: Any = None, *args: Any, **kwargs: Any) -> Any:
            if gradient is None and flipped(self):
                return original(-self, None, *args, **kwargs)
            return original(self, gradient, *args, **kwargs)

        return call

    _patch(stack, torch.Tensor, "backward", backward)


NUMERIC_REMEDIES: tuple[Remedy, ...] = (
    Remedy("guard-op-at-line", ("numerics.nonfinite-forward",),
           lambda f: (f"the {guarded_op(f)} at {', '.join(sorted(_sites(f)))} kept in its domain"
                      + (" (log of a softmax/sigmoid computed as log_softmax/logsigmoid)" if guarded_op(f) == "log"
                         else "")),
           lambda f: f"{(f.get('evidence') or {}).get('op_fix', 'Keep the argument inside the domain of the op')} "
                     f"(at {', '.join(sorted(_sites(f)))}).",
           _install_guard, applies=lambda f: bool(_sites(f)) and bool(guarded_op(f))),
    Remedy("finite-gradient-at-line", ("numerics.nonfinite-gradient",),
           lambda f: f"the non-finite gradient entries of sqrt/pow/norm/log/div at {', '.join(sorted(_sites(f)))} "
                     "zeroed (their derivative at the edge of the domain taken as 0); forward values unchanged",
           lambda f: f"Keep the argument away from the point of infinite derivative at {', '.join(sorted(_sites(f)))}:"
                     " torch.sqrt(x + 1e-8) instead of torch.sqrt(x) (also for x ** 0.5 and x.norm() at 0).",
           _install_guard, applies=lambda f: bool(_sites(f))),
    Remedy("negate-log-likelihood", ("loss-curve.log-likelihood-minimised",),
           lambda f: f"backward() of the log-likelihood ({(f.get('evidence') or {}).get('graph', 'the loss')}) "
                     "back-propagates its negative (the NLL)",
           lambda f: "Negate the loss: loss = -log_probs.gather(1, y[:, None]).mean(), or F.nll_loss(log_probs, y) / "
                     "F.cross_entropy(logits, y) without an extra minus.",
           _install_negate_log_likelihood, changes_loss=True),
)
