"""shape: silent broadcasting that turns a per-sample loss into an all-pairs loss.

The field guide's most common bug: a prediction of shape (N, 1) compared with a target of
shape (N,) broadcasts to (N, N), so every prediction is compared with every target and the
model can only learn the mean. Torch accepts it with at most a warning. Checks here:

* :class:`BroadcastInLoss`: a built-in elementwise loss (MSE, L1, Huber, KL, Poisson...)
  whose input and target broadcast to a shape bigger than both.
* :class:`BroadcastInElementwiseOp`: the same in a hand-written loss: ``pred - y`` with one
  operand (N, 1) and the other (N,), N the current batch size, exactly one of them a
  computed tensor that requires grad (model output vs data). Legitimate broadcasting (bias
  adds, pairwise ``x[:, None] - x``, attention masks, ``(N, 1)`` statistics of the same
  tensor) does not match this pattern.
* :class:`SoftTargetNotDistribution`: a float (N, C) target for ``cross_entropy`` (read as
  class probabilities) whose rows are not probability distributions.

Shape-mismatch crashes are explained by ``nndoctor.debug.crash``, not here.
"""

from __future__ import annotations

from typing import Any, Iterable

import torch

from nndoctor.checks import Check, register
from nndoctor.debug.loss_input import StepBatchSizes, fmt, head, loss_label
from nndoctor.findings import Finding
from nndoctor.monitor.events import LossCall, ModelInput, OpCall
from nndoctor.monitor.observer import user_site

__all__ = ["BroadcastInElementwiseOp", "BroadcastInLoss", "SoftTargetNotDistribution"]

#: losses that compute elementwise on broadcast input and target without raising
_ELEMENTWISE_LOSSES = frozenset({"mse_loss", "l1_loss", "smooth_l1_loss", "huber_loss", "kl_div",
                                 "poisson_nll_loss", "gaussian_nll_loss", "binary_cross_entropy",
                                 "binary_cross_entropy_with_logits"})
#: binary elementwise ops of a hand-written loss (normalised names: ``__sub__`` -> ``sub``)
_ELEMENTWISE_OPS = frozenset({"sub", "rsub", "subtract", "add", "radd", "mul", "rmul", "multiply",
                              "div", "truediv", "rdiv", "rtruediv", "divide", "true_divide", "pow", "rpow"})


_SYMBOLS = {"sub": "-", "rsub": "-", "subtract": "-", "add": "+", "radd": "+", "mul": "*", "rmul": "*",
            "multiply": "*", "div": "/", "truediv": "/", "rdiv": "/", "rtruediv": "/", "divide": "/",
            "true_divide": "/", "pow": "**", "rpow": "**"}


def _numel(shape: tuple[int, ...]) -> int:
    n = 1
    for s in shape:
        n *= s
    return n


def _fix_hint(pred: tuple[int, ...], target: tuple[int, ...]) -> str:
    """The one-line reshape that makes the two shapes equal, when it is the common case."""
    if len(pred) == len(target) + 1 and pred[-1] == 1 and pred[:-1] == target:
        return "squeeze the prediction: `pred.squeeze(-1)` (or `target.unsqueeze(-1)`)"
    if len(target) == len(pred) + 1 and target[-1] == 1 and target[:-1] == pred:
        return "squeeze the target: `target.squeeze(-1)` (or `pred.unsqueeze(-1)`)"
    return f"reshape one side so both are {pred if _numel(pred) >= _numel(target) else target}"


@register
class BroadcastInLoss(Check):
    """A built-in loss whose input and target broadcast to something bigger than both."""

    code = "shape.broadcast-in-loss"
    needs = ("loss",)

    def check(self, event: LossCall) -> Iterable[Finding]:
        if event.name not in _ELEMENTWISE_LOSSES or event.target is None:
            return ()
        a, b = tuple(event.input.shape), tuple(event.target.shape)
        if a == b:
            return ()
        try:
            out = tuple(torch.broadcast_shapes(a, b))
        except RuntimeError:
            return ()  # torch raises on its own: the crash explainer's case
        if _numel(out) <= max(_numel(a), _numel(b)):
            return ()
        factor = _numel(out) / max(1, max(_numel(a), _numel(b)))
        evidence = {"loss": loss_label(event.name), "input_shape": a, "target_shape": b, "broadcast_shape": out,
                    "factor": round(factor, 1), "site": event.site, "hint": _fix_hint(a, b)}
        return [self.finding(
            f"{loss_label(event.name)} gets input {a} and target {b}, which broadcast to {out}: every "
            f"prediction is compared with every target ({fmt(factor)}x the terms), so the loss is wrong "
            f"and the model can only learn the mean",
            evidence, location=event.site or event.name)]


@register
class BroadcastInElementwiseOp(Check):
    """``pred - y`` in a hand-written loss with (N, 1) against (N,): an (N, N) result."""

    code = "shape.broadcast-in-elementwise-op"
    needs = ("op", "model_input")
    sampled_only = frozenset({"model_input"})
    ops = _ELEMENTWISE_OPS

    def __init__(self, state: Any) -> None:
        super().__init__(state)
        self._batch = StepBatchSizes()
        self._reported: set[str] = set()

    def check(self, event: Any) -> Iterable[Finding]:
        if isinstance(event, ModelInput):
            self._batch.update(event)
            return ()
        if not isinstance(event, OpCall) or not self._batch.sizes:
            return ()
        args = event.args
        a = args[0] if args else event.kwargs.get("input")
        b = args[1] if len(args) > 1 else event.kwargs.get("other", event.kwargs.get("exponent"))
        if not (isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor)):
            return ()
        if {a.dim(), b.dim()} != {1, 2}:
            return ()
        col, row = (a, b) if a.dim() == 2 else (b, a)
        n = int(row.shape[0])
        if n < 2 or tuple(col.shape) != (n, 1) or n not in self._batch.sizes:
            return ()
        # exactly one side is computed with grad (the model's output), the other is data
        grads = [t.requires_grad and t.grad_fn is not None for t in (a, b)]
        if sum(grads) != 1 or (a.requires_grad and b.requires_grad):
            return ()
        site = user_site()
        if site in self._reported:
            return ()
        self._reported.add(site)
        sa, sb = tuple(a.shape), tuple(b.shape)
        pred, target = (sa, sb) if grads[0] else (sb, sa)
        where = site or event.module or f"`{event.name}` of {pred} with {target}"
        op = f"{event.name} ({_SYMBOLS[event.name]})" if event.name in _SYMBOLS else event.name
        evidence = {"op": op, "shapes": [sa, sb], "prediction_shape": pred, "target_shape": target,
                    "broadcast_shape": (n, n), "batch_size": n, "site": where, "module": event.module,
                    "hint": _fix_hint(pred, target)}
        return [self.finding(
            f"`{op}` of a {pred} tensor that requires grad (model output) with a {target} tensor "
            f"broadcasts to ({n}, {n}) at {where}: each of the {n} predictions is combined with "
            f"all {n} targets, so a hand-written loss built on it averages over wrong pairs",
            evidence, location=where)]


@register
class SoftTargetNotDistribution(Check):
    """Float (N, C) targets for ``cross_entropy`` are read as class probabilities: they must be ones."""

    code = "shape.soft-target-not-distribution"
    needs = ("loss",)

    def __init__(self, state: Any) -> None:
        super().__init__(state)
        self._reported: set[str] = set()

    def check(self, event: LossCall) -> Iterable[Finding]:
        t = event.target
        if event.name != "cross_entropy" or t is None or not t.is_floating_point():
            return ()
        if t.shape != event.input.shape or t.dim() < 2 or t.shape[1] < 2 or event.site in self._reported:
            return ()
        tv = head(t).detach().float()
        if not bool(torch.isfinite(tv).all()):
            return ()
        sums = tv.sum(1)
        tmin = tv.min().item()
        bad_rows = ((sums - 1).abs() > 1e-2).float().mean().item()
        if tmin >= -1e-6 and bad_rows == 0:
            return ()
        self._reported.add(event.site)
        if tmin < -1e-6:
            why = f"it has negative entries (min {fmt(tmin)})"
        else:
            why = (f"{bad_rows:.0%} of its rows do not sum to 1 (row sums {fmt(sums.min().item())}.."
                   f"{fmt(sums.max().item())})")
        evidence = {"loss": loss_label(event.name), "target_shape": tuple(t.shape), "target_min": fmt(tmin),
                    "row_sum_min": fmt(sums.min().item()), "row_sum_max": fmt(sums.max().item()),
                    "share_bad_rows": round(bad_rows, 3), "site": event.site,
                    "batch_shape": (t.shape[0], *t.shape[2:])}
        return [self.finding(
            f"{loss_label(event.name)} gets a float target of shape {tuple(t.shape)}, which it reads as class "
            f"probabilities, but {why}: the loss is not a cross-entropy and its minimum is not at the "
            f"intended prediction",
            evidence, location=event.site or event.name)]
