"""init: an LSTM whose forget gates start (nearly) closed.

An LSTM keeps its cell state through the forget gate ``f = sigmoid(W x + U h + b_ih_f + b_hh_f)``:
at ``f ~ 0.27`` (a bias of -1) a cell keeps 27% of its memory per step and forgets its input within a
few steps. PyTorch starts both biases near zero (``f ~ 0.5``) and the standard recipe adds +1 to the
forget bias (Jozefowicz et al. 2015) so that memory flows from the start. A forget bias filled with
-1 or less (a sign slip in that recipe, a bias fill meant for another gate: PyTorch orders the
gates input, forget, cell, output) cuts the memory the task needs, and the gradient through time
vanishes with it.

Evidence, read once from the weights at the first optimizer step (before it updates them): for each
``nn.LSTM`` layer / ``nn.LSTMCell`` trained by that optimizer, the forget slice ``[H:2H]`` of
``bias_ih + bias_hh``: a mean at or below ``CLOSED`` with at least ``SHARE`` of its units there.
"""

from __future__ import annotations

from typing import Any, Iterable

import torch
from torch import nn

from nndoctor.checks import Check, register
from nndoctor.findings import Finding
from nndoctor.monitor.checks._layers import fmt
from nndoctor.monitor.events import StepEvent
from nndoctor.monitor.tensors import is_sharded, own_named_parameters, own_parameters, param_ids

__all__ = ["ClosedForgetGate", "forget_biases"]

CLOSED = -1.0  # summed forget bias at or below this: sigmoid(-1) = 0.27 of the cell kept per step
SHARE = 0.5


def forget_biases(module: nn.Module) -> list[tuple[str, torch.Tensor]]:
    """(parameter suffix, summed forget-gate bias) per layer/direction of an LSTM or LSTMCell."""
    out: list[tuple[str, torch.Tensor]] = []
    hidden = int(getattr(module, "hidden_size", 0))
    if not hidden:
        return out
    for name, b_ih in own_named_parameters(module):
        if not name.startswith("bias_ih") or is_sharded(b_ih):
            continue  # (a sharded bias: its gate slices are spread over the ranks, not judged)
        suffix = name[len("bias_ih"):]
        b_hh = getattr(module, "bias_hh" + suffix, None)
        total = b_ih.detach()[hidden:2 * hidden].float()
        if isinstance(b_hh, torch.Tensor):
            total = total + b_hh.detach()[hidden:2 * hidden].float()
        out.append((suffix, total))
    return out


@register
class ClosedForgetGate(Check):
    """The forget-gate bias of an LSTM starts at -1 or below: the cells forget within a few steps."""

    code = "init.lstm-forget-gate-closed"
    needs = ("step",)
    step_phases = frozenset({"pre"})
    sampled_only = frozenset({"step"})  # the first step is always sampled (the dense start)

    def __init__(self, state: Any) -> None:
        super().__init__(state)
        self._seen: set[int] = set()

    def check(self, event: StepEvent) -> Iterable[Finding]:
        if event.phase != "pre" or id(event.optimizer) in self._seen:
            return ()
        self._seen.add(id(event.optimizer))
        in_opt = param_ids(event.optimizer)
        out: list[Finding] = []
        for _info, model in self.state.live_models():
            for module in model.modules():
                if not isinstance(module, (nn.LSTM, nn.LSTMCell)) or not any(
                        id(p) in in_opt for p in own_parameters(module)):
                    continue
                closed = []
                for suffix, bias in forget_biases(module):
                    mean = float(bias.mean())
                    share = float((bias <= CLOSED).float().mean())
                    if mean <= CLOSED and share >= SHARE:
                        closed.append({"bias": "bias_ih" + suffix, "forget_bias_mean": mean, "share_closed": share,
                                       "gate_at_start": float(torch.sigmoid(torch.tensor(mean)))})
                if not closed:
                    continue
                name = self.state.param_name(getattr(module, closed[0]["bias"]))
                layer = name.rsplit(".", 1)[0] if "." in name else name
                worst = min(closed, key=lambda c: c["forget_bias_mean"])
                hidden = int(module.hidden_size)
                which = ", ".join(c["bias"] for c in closed)
                ev = {"layer": layer, "closed": closed, "forget_bias_mean": worst["forget_bias_mean"],
                      "gate_at_start": worst["gate_at_start"], "hidden_size": hidden, "step": event.step}
                out.append(self.finding(
                    f"the forget gates of {layer} start nearly closed: the forget slice (units {hidden}-"
                    f"{2 * hidden - 1}) of its biases ({which}, plus the matching bias_hh) averages "
                    f"{fmt(worst['forget_bias_mean'])}, so each step keeps only ~{worst['gate_at_start']:.0%} of "
                    f"the cell state and the LSTM forgets its input within a few steps (PyTorch orders the "
                    f"gates input, forget, cell, output)", ev, location=layer, step=event.step))
        return out
