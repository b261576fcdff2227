"""train-mode: batch norms trained on batches that hold a single sample.

``nn.BatchNorm1d`` on ``(1, C)`` raises, but ``nn.BatchNorm2d`` on ``(1, C, H, W)`` (or
``BatchNorm1d`` on ``(1, C, L)``) normalises happily with one sample's own statistics: each
sample's per-channel mean and scale are erased, and the running statistics used in eval mode
average single samples' statistics, which training never normalised with. A per-sample training
loop with a convolutional model evaluates near chance in eval mode.

Detection: on sampled training forwards (module in training mode, gradients on) the batch size of
each batch norm's input is counted; at the end of the run a batch norm with at least
:data:`MIN_SEEN` counted forwards, a share :data:`SHARE` or more of them with one sample, is
reported. A last batch of one now and then, single-sample inference in eval mode or under
no_grad, and larger batches stay quiet.
"""

from __future__ import annotations

from typing import Any, Iterable

import torch
from torch import nn

from nndoctor.checks import Check, register
from nndoctor.findings import Finding
from nndoctor.monitor.events import ModuleOutput, RunEnd

__all__ = ["BatchNormBatchOfOne"]

#: sampled training forwards a batch norm must have made before it is judged
MIN_SEEN = 5
#: share of those forwards with a single sample that makes a finding
SHARE = 0.8


@register
class BatchNormBatchOfOne(Check):
    """Batch norms whose training batches hold one sample."""

    code = "train-mode.batchnorm-batch-of-one"
    needs = ("module_output", "end")
    sampled_only = frozenset({"module_output"})
    module_types = (nn.modules.batchnorm._BatchNorm,)
    needs_module = True

    def __init__(self, state: Any) -> None:
        super().__init__(state)
        #: id(bn) -> [name, forwards counted, forwards with one sample, class name, input shape]
        self._seen: dict[int, list[Any]] = {}

    def check(self, event: ModuleOutput | RunEnd) -> Iterable[Finding]:
        if isinstance(event, RunEnd):
            return self._judge()
        mod = event.module
        if not (isinstance(mod, nn.modules.batchnorm._BatchNorm) and mod.training and event.grad_enabled
                and event.inputs):
            return ()
        x = event.inputs[0]
        if not isinstance(x, torch.Tensor) or x.dim() < 2:
            return ()
        entry = self._seen.setdefault(id(mod), [event.name, 0, 0, type(mod).__name__, ()])
        entry[1] += 1
        if x.shape[0] == 1:
            entry[2] += 1
            entry[4] = tuple(x.shape)
        return ()

    def _judge(self) -> list[Finding]:
        hits = [e for e in self._seen.values() if e[1] >= MIN_SEEN and e[2] >= SHARE * e[1]]
        if not hits:
            return []
        name, seen, ones, cls, shape = hits[0]
        evidence = {"layers": [e[0] for e in hits][:8], "layer": name, "forwards_observed": seen,
                    "forwards_with_one_sample": ones, "input_shape": shape, "module": cls}
        more = f" (and {len(hits) - 1} more batch norm(s))" if len(hits) > 1 else ""
        return [self.finding(
            f"{cls} {name}{more} was trained on batches of ONE sample in {ones} of {seen} observed training "
            f"forwards (input shape {shape}): its batch statistics are that sample's own, so each sample's "
            f"per-channel mean and scale are erased, and the running statistics used in eval mode average "
            f"single samples' statistics that training never normalised with (eval-mode results can be far "
            f"worse than training's)",
            evidence, location=name)]
