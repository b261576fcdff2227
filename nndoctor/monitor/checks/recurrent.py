"""grad: gradients that explode through time in a recurrent network trained without clipping.

A recurrent weight is applied once per time step, so its gradient is a product over the sequence:
with a recurrent matrix of spectral radius >= 1 (an identity-initialised IRNN, a ReLU RNN) it grows
geometrically with the sequence length. The first update is then many times the size of the weights,
the loss explodes a step later and looks like a too-high learning rate or a numerics bug; the
remedy is gradient clipping (which the recipes for such networks assume), not a smaller rate.

Evidence, at the ``step`` pre event of a sampled step (gradients complete, after any clipping): a
recurrent weight (of ``nn.RNN`` / ``nn.LSTM`` / ``nn.GRU`` or their cells) whose gradient norm is
>= 10x its own norm and >= 50 in absolute terms, all finite. With clipping (``clip_grad_norm_``
before ``step``) the gradients the optimizer sees are small and this stays quiet; so does a
healthy recurrent net, whose gradients are a fraction of its weights.

With an adaptive optimizer (Adam, RMSprop...), whose update of each weight stays about its learning
rate however large the gradient, such a gradient does not make one update wreck the weights: it is
``info`` (graykode's Bi-LSTM spikes to 15x its recurrent weight's norm under Adam while its loss keeps
falling, and clipping at 1.0 ends with a higher loss on 2 of 2 seeds).
"""

from __future__ import annotations

from typing import Any, Iterable

import torch
from torch import nn

from nndoctor.checks import Check, register
from nndoctor.findings import Finding, Severity
from nndoctor.monitor.checks._layers import fmt, host_floats
from nndoctor.monitor.checks.gradients import ADAPTIVE
from nndoctor.monitor.events import StepEvent
from nndoctor.monitor.tensors import own_named_parameters, param_ids

__all__ = ["RecurrentExplosion"]

RATIO = 10.0  # gradient norm / weight norm of a recurrent weight...
ABSOLUTE = 50.0  # ...and this large in absolute terms
MIN_WEIGHT = 0.1  # a weight at ~0 makes any ratio huge: not judged


def _recurrent_weights(model: nn.Module, state: Any) -> list[tuple[str, torch.Tensor]]:
    out: list[tuple[str, torch.Tensor]] = []
    for module in model.modules():
        if isinstance(module, (nn.RNNBase, nn.RNNCellBase)):
            for name, p in own_named_parameters(module):
                if name.startswith("weight_hh") and p.grad is not None and not p.grad.is_sparse:
                    out.append((state.param_name(p), p))
    return out


@register
class RecurrentExplosion(Check):
    """A recurrent weight's gradient many times its own size: explosion through time, no clipping."""

    code = "grad.exploding-through-time"
    needs = ("step",)
    step_phases = frozenset({"pre"})
    sampled_only = frozenset({"step"})

    def __init__(self, state: Any) -> None:
        super().__init__(state)
        self._done = False
        self._has_rnn: dict[int, bool] = {}

    def check(self, event: StepEvent) -> Iterable[Finding]:
        if self._done or not event.sampled or event.phase != "pre":
            return ()
        in_opt = param_ids(event.optimizer)
        weights: list[tuple[str, torch.Tensor]] = []
        for _info, model in self.state.live_models():
            has = self._has_rnn.get(id(model))
            if has is None:
                has = self._has_rnn[id(model)] = any(
                    isinstance(m, (nn.RNNBase, nn.RNNCellBase)) for m in model.modules())
            if has:
                weights += [(n, p) for n, p in _recurrent_weights(model, self.state) if id(p) in in_opt]
        if not weights:
            return ()
        values = host_floats([p.grad.detach().float().norm() for _, p in weights]
                             + [p.detach().float().norm() for _, p in weights])
        k = len(weights)
        for (name, _), g, w in zip(weights, values[:k], values[k:]):
            if g == g and g != float("inf") and w >= MIN_WEIGHT and g >= ABSOLUTE and g >= RATIO * w:
                self._done = True
                self.retire()  # (its verdict is given: nothing more to hear but the end)
                ev = {"param": name, "grad_norm": g, "weight_norm": w, "ratio": g / w,
                      "optimizer": event.optimizer_name}
                kind = type(event.optimizer).__name__
                if kind in ADAPTIVE:
                    ev["adaptive_optimizer"] = kind
                    return [self.finding(
                        f"the gradient of the recurrent weight {name} is {fmt(g)} ({fmt(g / w)}x the weight's norm "
                        f"{fmt(w)}) at step {event.step}, with no clipping before {event.optimizer_name}.step(); "
                        f"{kind} keeps each update about its learning rate in size, so this gradient does not "
                        f"wreck the weights by itself (clip if the loss spikes)", ev, location=name,
                        severity=Severity.INFO)]
                return [self.finding(
                    f"the gradient of the recurrent weight {name} is {fmt(g)} ({fmt(g / w)}x the weight's "
                    f"norm {fmt(w)}) at step {event.step}, with no clipping before {event.optimizer_name}.step(): "
                    f"it grows through the time steps, so one update wrecks the weights and the loss explodes",
                    ev, location=name)]
        return ()
