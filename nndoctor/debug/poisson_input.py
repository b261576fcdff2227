"""loss-input: PoissonNLLLoss told the wrong thing about its input (log-rate or rate).

``PoissonNLLLoss`` / ``F.poisson_nll_loss`` default to ``log_input=True``: the input is the log of
the rate and the loss is ``exp(input) - target * input``. A model that already outputs the rate
(through softplus, exp, ReLU, sigmoid...) is then trained as if its output were a log: it learns
``rate = log(count)``, its predictions are on the wrong scale and the exp of an exp can overflow.
The opposite slip, ``log_input=False`` with a raw linear output, takes the log of negative rates:
the loss is NaN from the first step.

Evidence, on sampled training calls: with ``log_input=True`` the input was produced by a
non-negative activation (the observer's provenance label, or the autograd node behind views and
casts); with ``log_input=False`` the input has negative values and no such activation. Either is
reported once per call site.
"""

from __future__ import annotations

from typing import Any, Iterable

import torch

from nndoctor.checks import Check, register
from nndoctor.findings import Finding, Severity
from nndoctor.monitor.events import LossCall

__all__ = ["PoissonLogInput"]

#: provenance ops and autograd nodes whose output is a rate (>= 0), not a log-rate
_RATE_OPS = {"softplus": "softplus", "exp": "exp", "relu": "ReLU", "relu6": "ReLU6", "sigmoid": "sigmoid",
             "abs": "abs", "square": "square"}
_RATE_NODES = {"SoftplusBackward0": "softplus", "ExpBackward0": "exp", "ReluBackward0": "ReLU",
               "SigmoidBackward0": "sigmoid", "AbsBackward0": "abs"}
#: autograd nodes that keep the values (views, casts, copies): walked through
_VIEW_NODES = frozenset({"ViewBackward0", "SqueezeBackward0", "SqueezeBackward1", "UnsqueezeBackward0",
                         "ReshapeAliasBackward0", "UnsafeViewBackward0", "ToCopyBackward0", "CloneBackward0",
                         "SelectBackward0", "SliceBackward0", "ExpandBackward0", "TBackward0",
                         "PermuteBackward0", "TransposeBackward0", "SqueezeBackward2", "ViewAsRealBackward0"})


def _log_input(event: LossCall) -> bool:
    flag = event.kwargs.get("log_input", event.rest[0] if event.rest else True)
    return bool(flag)


def _rate_activation(event: LossCall) -> str | None:
    """The non-negative activation that made the loss input, if any."""
    prov = event.provenance
    if prov is not None and prov.op in _RATE_OPS:
        return _RATE_OPS[prov.op]
    node = getattr(event.input, "grad_fn", None)
    for _ in range(8):
        if node is None:
            return None
        name = type(node).__name__
        if name in _RATE_NODES:
            return _RATE_NODES[name]
        if name not in _VIEW_NODES:
            return None
        parents = [n for n, _ in node.next_functions if n is not None]
        if len(parents) != 1:
            return None
        node = parents[0]
    return None


@register
class PoissonLogInput(Check):
    """``poisson_nll_loss`` with ``log_input`` contradicting what the model outputs."""

    code = "loss-input.rate-into-poisson-log-input"
    needs = ("loss",)
    sampled_only = frozenset({"loss"})

    def __init__(self, state: Any) -> None:
        super().__init__(state)
        self._done: set[str] = set()

    def check(self, event: LossCall) -> Iterable[Finding]:
        site = event.site or event.name
        if event.name != "poisson_nll_loss" or not event.grad_enabled or site in self._done:
            return ()
        x = event.input
        if not isinstance(x, torch.Tensor) or not x.is_floating_point() or x.numel() == 0:
            return ()
        activation = _rate_activation(event)
        log_input = _log_input(event)
        x_min = float(x.detach().min())
        if log_input and activation is not None:
            self._done.add(site)
            ev = {"loss": "PoissonNLLLoss / F.poisson_nll_loss", "log_input": True, "activation": activation,
                  "input_shape": tuple(x.shape), "input_min": round(x_min, 4), "site": event.site}
            return [self.finding(
                f"PoissonNLLLoss / F.poisson_nll_loss runs with log_input=True (the default), which reads its input "
                f"as a log-rate, but the input comes out of {activation}: it is already a rate. The loss becomes "
                f"exp(rate) - y * rate, the model learns rate = log(count) and its predictions are on the wrong "
                f"scale (at {event.site or 'the loss'})",
                ev, location=event.site or "poisson_nll_loss")]
        if not log_input and activation is None and x_min < 0:
            self._done.add(site)
            share = float((x.detach() < 0).float().mean())
            ev = {"loss": "PoissonNLLLoss / F.poisson_nll_loss", "log_input": False, "activation": "none",
                  "input_shape": tuple(x.shape), "input_min": round(x_min, 4), "negative_share": round(share, 4),
                  "site": event.site}
            return [self.finding(
                f"PoissonNLLLoss / F.poisson_nll_loss runs with log_input=False, which reads its input as a rate "
                f"and takes its log, but {share:.0%} of the inputs are negative (min {x_min:.3g}; the output has "
                f"no non-negative activation): their log is NaN (at {event.site or 'the loss'})",
                ev, location=event.site or "poisson_nll_loss", severity=Severity.ERROR)]
        return ()
