"""activation: a nonlinearity that is the identity, so the layers around it collapse into one linear map.

``nn.LeakyReLU(True)`` reads as "in place" but its first argument is ``negative_slope``: True is 1.0 and
``LeakyReLU(1.0)(x) == x``. The same happens with ``nn.RReLU(1.0, 1.0)``. A stack of Linear/Conv layers
with such "activations" is one linear model whatever its depth, and it cannot fit what needs a
nonlinearity (XOR-like or radial classes): the loss stops at the best linear fit.

Evidence, read once per trained model at its first optimizer step: activation modules whose negative
slope is 1 (the identity: a warning) or within ``NEAR`` of 1 (nearly linear: info, a choice some make),
in a model with at least two layers with weights. ``LeakyReLU(0.2, True)``, ``PReLU`` (learned) and every
other activation are not judged.
"""

from __future__ import annotations

from typing import Any, Iterable

from torch import nn

from nndoctor.checks import Check, register
from nndoctor.findings import Finding, Severity
from nndoctor.monitor.checks._layers import fmt
from nndoctor.monitor.events import StepEvent
from nndoctor.monitor.tensors import param_ids

__all__ = ["IdentityActivation", "negative_slope"]

NEAR = 0.1  # |slope - 1| below this: the activation bends by less than 10%
_WEIGHTED = (nn.Linear, nn.modules.conv._ConvNd, nn.Bilinear)


def negative_slope(module: nn.Module) -> float | None:
    """The slope of an activation's negative side, where it is a fixed setting (else None)."""
    if isinstance(module, nn.LeakyReLU):
        return float(module.negative_slope)
    if isinstance(module, nn.RReLU):
        return (float(module.lower) + float(module.upper)) / 2
    return None


@register
class IdentityActivation(Check):
    """LeakyReLU/RReLU with a negative slope of (about) 1: the activation is the identity."""

    code = "activation.identity-activation"
    needs = ("step",)
    step_phases = frozenset({"pre"})
    sampled_only = frozenset({"step"})  # the first step is always sampled (the dense start)

    def __init__(self, state: Any) -> None:
        super().__init__(state)
        self._seen: set[int] = set()

    def check(self, event: StepEvent) -> Iterable[Finding]:
        if event.phase != "pre":
            return ()
        in_opt = param_ids(event.optimizer)
        out: list[Finding] = []
        for info, model in self.state.live_models():
            if id(model) in self._seen or not any(id(p) in in_opt for p in model.parameters()):
                continue
            self._seen.add(id(model))
            weighted, flat = 0, []
            for path, module in model.named_modules():
                weighted += isinstance(module, _WEIGHTED)
                slope = negative_slope(module)
                if slope is not None and abs(slope - 1.0) < NEAR:
                    flat.append((f"{info.name}.{path}" if path else info.name, slope))
            if not flat or weighted < 2:
                continue
            identity = [name for name, slope in flat if slope == 1.0]
            names = ", ".join(name for name, _ in flat[:4]) + (f" and {len(flat) - 4} more" if len(flat) > 4 else "")
            slope = flat[0][1]
            ev = {"model": info.name, "modules": [n for n, _ in flat], "negative_slope": slope,
                  "identity": bool(identity), "weighted_layers": weighted, "step": event.step}
            verb = "are" if len(flat) > 1 else "is"
            what = (f"{verb} the identity (negative_slope=1: `LeakyReLU(True)` sets the slope, not inplace)"
                    if identity else f"{verb} nearly linear (negative slope {fmt(slope)})")
            out.append(self.finding(
                f"the activation{'s' if len(flat) > 1 else ''} {names} of {info.name} {what}: the {weighted} "
                f"layers with weights around {'them' if len(flat) > 1 else 'it'} "
                f"compute one linear map, so the model cannot fit anything a linear model cannot",
                ev, location=flat[0][0], step=event.step, severity=None if identity else Severity.INFO))
        return out
