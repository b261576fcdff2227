"""init: a normalisation layer whose weight starts at zero with nothing around it to carry the signal.

Zero-initialising the last BatchNorm gamma of a residual branch makes each block start as the
identity (Goyal et al.); copied onto a plain stack, the same line makes a layer emit its bias for
every input, and nothing reaches the output. Seen from ``module_output`` events on sampled
training steps: a BatchNorm/LayerNorm/GroupNorm/InstanceNorm with an affine weight that is exactly
zero everywhere, and the root model's output identical for every sample of the batch, at
``STREAK`` sampled steps in a row. A zero-gamma residual branch keeps the output varying; a
zero-initialised head learns after its first step; neither is reported.
"""

from __future__ import annotations

from typing import Any, Iterable

import torch
import torch.nn as nn

from nndoctor.checks import Check, register
from nndoctor.findings import Finding
from nndoctor.monitor.events import ModuleOutput

__all__ = ["ZeroNormWeight"]

STREAK = 3
CONSTANT_RTOL = 1e-6
_NORMS = (nn.modules.batchnorm._NormBase, nn.LayerNorm, nn.GroupNorm)


@register
class ZeroNormWeight(Check):
    """Zero gamma in a normalisation layer and a model output that is constant over the batch."""

    code = "init.zero-norm-weight"
    needs = ("module_output",)
    module_types = _NORMS  # (and the model's output: constant over the batch?)
    root_outputs = True
    needs_module = True

    def __init__(self, state: Any) -> None:
        super().__init__(state)
        self._zero: dict[str, int] = {}      # norm layer -> last step its weight was all zero
        self._streak: tuple[int, int] = (-1, 0)
        self._done = False

    def check(self, event: ModuleOutput) -> Iterable[Finding]:
        if self._done or not event.grad_enabled:
            return ()
        module = event.module
        if isinstance(module, _NORMS):
            weight = getattr(module, "weight", None)
            if isinstance(weight, torch.Tensor) and weight.numel() and not bool(weight.detach().any()):
                self._zero[event.name] = event.step
            else:
                self._zero.pop(event.name, None)
            return ()
        if id(module) not in self.state.models:
            return ()
        zero = sorted(name for name, step in self._zero.items() if step == event.step)
        out = event.output
        if not zero or not isinstance(out, torch.Tensor) or out.dim() < 1 or out.shape[0] < 2:
            self._streak = (-1, 0)
            return ()
        flat = out.detach().reshape(out.shape[0], -1).float()
        spread = float(flat.std(dim=0).max())
        scale = float(flat.abs().max()) + 1.0
        if not spread <= CONSTANT_RTOL * scale:
            self._streak = (-1, 0)
            return ()
        last, count = self._streak
        if last == event.step:
            return ()
        count += 1
        self._streak = (event.step, count)
        if count < STREAK:
            return ()
        self._done = True
        self.retire()  # (its verdict is given: nothing more to hear but the end)
        location = zero[0]
        evidence = {"location": location, "zero_weight_layers": zero, "output_std_over_batch": spread,
                    "batch": int(out.shape[0]), "steps": count}
        others = f" (and {len(zero) - 1} more)" if len(zero) > 1 else ""
        return [self.finding(
            f"{location}{others} has its normalisation weight (gamma) at exactly 0 and the model's output is "
            f"the same for all {int(out.shape[0])} samples of the batch at {count} sampled steps in a row: "
            f"without a skip connection around it the layer outputs only its bias, so no signal and no "
            f"gradient pass and the gamma never grows",
            evidence, location=location)]
