"""loss-input: raw scores clamped into [0, 1] and used as probabilities by BCELoss.

Keras clips a prediction to ``[eps, 1 - eps]`` inside ``binary_crossentropy``; a port that keeps a
linear last layer and writes ``F.binary_cross_entropy(out.clamp(eps, 1 - eps), y)`` (or ``torch.clip``)
runs without a crash, but the clamp is not a probability model: every score below ``eps`` or above
``1 - eps`` is cut to the bound and gets no gradient at all, so those examples stop teaching the
model (a positive example scored negative costs ``-log(eps)`` and never moves), and the rest see a
loss whose input is a raw, unbounded score. A sigmoid (then an optional clamp for numerical safety)
is the model BCE expects.

Evidence, on training calls of ``binary_cross_entropy``: the input's autograd node is a clamp whose
own input comes straight from a layer with weights (through views, indexing or an addition only, no
sigmoid, tanh or exp on the way), and over the first sampled calls at least ``MIN_CUT_SHARE`` of the
values sit at the clamp's bounds. A clamp after a sigmoid, a clamp that cuts nothing, and a clamped
layer output that is not fed to BCE stay quiet.
"""

from __future__ import annotations

from typing import Any, Iterable

import torch

from nndoctor.checks import Check, register
from nndoctor.debug.loss_input import loss_label, trace_node
from nndoctor.findings import Finding
from nndoctor.monitor.events import LossCall

__all__ = ["ClampedScoresAsProbabilities"]

MIN_CUT_SHARE = 0.1  # share of the values held at a bound (no gradient) that makes it a warning
MIN_CALLS = 3  # sampled training calls looked at before judging
_CLAMPS = frozenset({"ClampBackward0", "ClampBackward1"})


def _bound(v: Any) -> float | None:
    if isinstance(v, torch.Tensor):
        return float(v.item()) if v.numel() == 1 else None
    return float(v) if isinstance(v, (int, float)) else None


def _cut(node: Any) -> tuple[float, float, int, int] | None:
    """(low bound, high bound, values cut, values) of a clamp node, from its saved input; None when its
    bounds are not within [0, 1] (not a clamp into probabilities) or its input is gone."""
    try:
        pre, lo, hi = node._saved_self, _bound(node._saved_min), _bound(node._saved_max)
    except (AttributeError, RuntimeError):
        return None
    if lo is None or hi is None or not 0.0 <= lo < hi <= 1.0 or not isinstance(pre, torch.Tensor):
        return None
    x = pre.detach().flatten()[:65536].float()
    return lo, hi, int(((x < lo) | (x > hi)).sum().item()), x.numel()


@register
class ClampedScoresAsProbabilities(Check):
    """A linear layer's scores clamped into [0, 1] and given to BCE as probabilities."""

    code = "loss-input.clamped-scores-as-probabilities"
    needs = ("loss",)

    def __init__(self, state: Any) -> None:
        super().__init__(state)
        #: per call site: [calls seen, values seen, values at a bound, settled]
        self._tallies: dict[str, list[int]] = {}

    def check(self, event: LossCall) -> Iterable[Finding]:
        if event.name != "binary_cross_entropy" or not (event.grad_enabled and event.input.requires_grad):
            return ()
        tally = self._tallies.setdefault(event.site, [0, 0, 0, 0])
        if tally[3]:
            return ()
        node = event.input.grad_fn
        if node is None or type(node).__name__ not in _CLAMPS:
            tally[3] = 1  # a sigmoid or another op at this site: not a clamp of raw scores
            return ()
        inner = next((n for n, _ in node.next_functions if n is not None), None)
        squash, raw = trace_node(inner)
        if squash is not None or not raw:
            tally[3] = 1  # a clamp after a sigmoid (numerical safety): fine
            return ()
        cut = _cut(node)
        if cut is None:
            tally[3] = 1
            return ()
        lo, hi, n_cut, n = cut
        tally[0] += 1
        tally[1] += n
        tally[2] += n_cut
        if tally[0] < MIN_CALLS:
            return ()
        tally[3] = 1
        share = tally[2] / max(tally[1], 1)
        if share < MIN_CUT_SHARE:
            return ()
        ev = {"loss": loss_label(event.name),
              "share_at_bounds": round(share, 3), "values": tally[1], "calls": tally[0], "bound_low": lo,
              "bound_high": hi, "site": event.site, "input_shape": tuple(event.input.shape)}
        return [self.finding(
            f"{ev['loss']} gets a layer's raw scores clamped into [{lo:.3g}, {hi:.3g}] as probabilities (no "
            f"sigmoid): {share:.0%} of {tally[1]} values in {tally[0]} calls were outside it and sit at a bound, "
            f"where the clamp passes no gradient, so those examples stop training the model",
            ev, location=event.site or event.name)]
