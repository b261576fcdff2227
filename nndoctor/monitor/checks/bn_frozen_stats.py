"""train-mode: batch norms whose running statistics never move, evaluated in eval mode.

In eval mode a batch norm normalises with its running mean and variance, which each training batch
moves by ``momentum``. ``nn.BatchNorm2d(c, momentum=0)`` ("no momentum", or a Keras momentum
translated the wrong way round) never moves them: after any amount of training they are still the
initial mean 0 and variance 1, so evaluation normalises features of another scale and offset than
training did and the evaluated model scores far below the trained one. (An averaged copy whose
buffers are not averaged is ``train-mode.copy-batchnorm-stats-never-updated``.)

Detection: on sampled training forwards, the per-channel statistics of each batch norm's input are
read (how far they are from mean 0 / variance 1: the median over channels of |mean| / std and of the
std ratio either way). When a root model is evaluated in eval mode, each of its batch norms that
tracked at least :data:`MIN_TRACKED` batches with its running mean still exactly 0 and its running
variance exactly 1 is stale. A warning when one stale batch norm's training inputs were far from
mean 0 / variance 1 (|mean| / std >= 0.5 or std ratio >= 2), or :data:`MIN_DEEP` of them are stale
(errors compound); ``info`` otherwise.
"""

from __future__ import annotations

from typing import Any, Iterable

import torch
from torch import nn

from nndoctor.checks import Check, register
from nndoctor.findings import Finding, Severity
from nndoctor.monitor.checks._layers import fmt
from nndoctor.monitor.events import EvalInput, ModuleOutput

__all__ = ["FrozenBatchNormStats"]

#: batches a batch norm must have tracked before stale statistics count
MIN_TRACKED = 10
#: training inputs this far from mean 0 / variance 1 make stale statistics a warning
MIN_SHIFT, MIN_STD_RATIO = 0.5, 2.0
MIN_DEEP = 3


def _stale(bn: nn.Module) -> bool:
    n = getattr(bn, "num_batches_tracked", None)
    mean, var = getattr(bn, "running_mean", None), getattr(bn, "running_var", None)
    if n is None or mean is None or var is None or int(n) < MIN_TRACKED or not mean.numel():
        return False
    return not bool(mean.detach().any()) and bool((var.detach() == 1).all())


def _input_offset(x: torch.Tensor) -> tuple[float, float] | None:
    """Median over channels (dim 1) of |mean| / std and of max(std, 1/std) of a batch-norm input."""
    if not isinstance(x, torch.Tensor) or not x.is_floating_point() or x.dim() < 2 or x.shape[0] < 2:
        return None
    flat = x.detach().float().transpose(0, 1).reshape(x.shape[1], -1)
    std = flat.std(dim=1).clamp_min(1e-12)
    ratio = torch.maximum(std, 1 / std)
    return float((flat.mean(dim=1).abs() / std).median()), float(ratio.median())


@register
class FrozenBatchNormStats(Check):
    """Batch norms that tracked batches but kept mean 0 / variance 1, used by an eval-mode evaluation."""

    code = "train-mode.batchnorm-stats-frozen"
    needs = ("module_output", "eval_input")
    sampled_only = frozenset({"module_output"})
    module_types = (nn.modules.batchnorm._BatchNorm,)  # (an evaluated model is judged whatever it holds)

    def __init__(self, state: Any) -> None:
        super().__init__(state)
        self._offsets: dict[int, tuple[float, float]] = {}  # id(bn) -> its training input's offset
        self._judged: set[int] = set()  # root models already judged

    def check(self, event: ModuleOutput | EvalInput) -> Iterable[Finding]:
        if isinstance(event, EvalInput):
            return self._on_eval(event)
        mod = event.module
        if (isinstance(mod, nn.modules.batchnorm._BatchNorm) and mod.training and mod.track_running_stats
                and event.inputs and id(mod) not in self._offsets):
            with torch.no_grad():
                off = _input_offset(event.inputs[0])
            if off is not None:
                self._offsets[id(mod)] = off
        return ()

    def _on_eval(self, event: EvalInput) -> list[Finding]:
        model = event.model
        if event.training or id(model) in self._judged:
            return []
        stale: list[tuple[str, nn.Module]] = []
        for path, mod in model.named_modules():
            if isinstance(mod, nn.modules.batchnorm._BatchNorm) and not mod.training and _stale(mod):
                stale.append((f"{event.name}.{path}" if path else event.name, mod))
        if not stale:
            return []
        self._judged.add(id(model))
        seen = [(name, self._offsets[id(m)]) for name, m in stale if id(m) in self._offsets]
        far = [(n, o) for n, o in seen if o[0] >= MIN_SHIFT or o[1] >= MIN_STD_RATIO]
        severity = Severity.WARNING if far or len(stale) >= MIN_DEEP else Severity.INFO
        first_name, first = stale[0]
        momentum = getattr(first, "momentum", None)
        ev: dict[str, Any] = {
            "model": event.name, "layers": [n for n, _ in stale][:8], "stale": len(stale),
            "momentum": momentum, "batches_tracked": int(first.num_batches_tracked),
            "input_offsets": {n: {"mean_over_std": round(o[0], 3), "std_ratio": round(o[1], 3)} for n, o in seen[:4]},
        }
        shown = far[0] if far else (seen[0] if seen else None)
        scale = (f"; their inputs during training had |mean| / std {fmt(shown[1][0])} and a std "
                 f"{fmt(shown[1][1])}x away from 1 ({shown[0]})" if shown else "")
        why = f" (momentum={momentum})" if momentum == 0 else ""
        msg = (f"{event.name} is evaluated in eval mode with {len(stale)} batch norm(s) ({first_name}"
               f"{' ...' if len(stale) > 1 else ''}) whose running statistics never moved{why}: after "
               f"{int(first.num_batches_tracked)} training batches the running mean is still exactly 0 and "
               f"the running variance exactly 1, so evaluation normalises with statistics training never "
               f"had{scale}")
        return [self.finding(msg, ev, location=first_name, severity=severity)]
