"""preprocessing: regression targets left on their raw scale (house prices ~1e5, counts, sensor units).

An MSE/L1 loss on targets far from unit scale gives gradients and an optimal output bias that the
default initialisation and a typical learning rate cannot reach: the output layer starts near 0,
Adam moves each weight ~lr per step, and the loss sits at the level of predicting a constant for
hundreds of steps (or SGD's steps blow up). Standardising the targets (and inverting it for the
predictions) is the fix; the curve symptoms (a plateau, a too-low or too-high lr) follow from it.

The check keeps a bounded sample of the float targets of the training regression-loss calls
(``mse_loss``, ``l1_loss``, ``smooth_l1_loss``, ``huber_loss``, mean reduction) on sampled steps and
judges at the end of the run: a warning when the targets are large (root mean square >= 10), the
run has >= 30 training losses from that one loss, and the loss at the end of the run (median of the
last 10%) is still >= 0.8x the loss of predicting the targets' mean (their variance for MSE, their
mean absolute deviation for L1-type losses): the model learned (almost) nothing. Large targets that
the model does learn stay quiet. Under an L1-type loss (``l1_loss``, ``smooth_l1_loss``, ``huber_loss``)
a loss that rose (its late level >= :data:`ROSE` x its first) or ends above the loss of predicting 0
(the mean absolute target: outputs that swung past the targets, not short of them) is not this
check's: their gradient with
respect to each output is bounded (at most 1, or delta) whatever the targets' scale, so large targets
can stall such a run but not blow its steps up; a rising loss there is the step size's doing (the lr
and loss-curve checks speak). (Under MSE the gradient grows with the error: large targets can.)
"""

from __future__ import annotations

import logging
import math
from typing import Any, Iterable

import numpy as np
import torch

from nndoctor.checks import Check, register
from nndoctor.findings import Finding
from nndoctor.monitor.checks._layers import fmt
from nndoctor.monitor.curves import ConstantBaseline
from nndoctor.monitor.events import LossCall, RunEnd

__all__ = ["TargetsNotScaled"]

logger = logging.getLogger("nndoctor")

REGRESSION = frozenset({"mse_loss", "l1_loss", "smooth_l1_loss", "huber_loss"})
#: losses whose gradient with respect to an output is bounded whatever the target's scale
BOUNDED_GRADIENT = frozenset({"l1_loss", "smooth_l1_loss", "huber_loss"})
ROSE = 1.5  # late / first loss: a loss that rose this much was driven up by its steps
LARGE = 10.0  # root mean square of the targets
NOT_LEARNED = 0.8  # late loss / constant-prediction loss
MIN_LOSSES = 30
MAX_SAMPLES = 16
PER_SAMPLE = 512


@register
class TargetsNotScaled(Check):
    """Regression targets on a large raw scale, and a loss that never beats predicting their mean."""

    code = "preprocessing.targets-not-scaled"
    needs = ("loss", "end")

    def __init__(self, state: Any) -> None:
        super().__init__(state)
        self._targets: list[torch.Tensor] = []
        self._sites: set[str] = set()
        self._name = ""
        self._first_step: int | None = None
        self._mixed = False
        self._baseline = ConstantBaseline()  # the loss of predicting the targets' mean (median for L1)

    def check(self, event: LossCall | RunEnd) -> Iterable[Finding]:
        if isinstance(event, RunEnd):
            found = self._judge()
            return [found] if found is not None else []
        if event.grad_enabled:
            self._on_loss(event)
        return ()

    def _on_loss(self, event: LossCall) -> None:
        self._sites.add(event.site or event.name)
        t, inp = event.target, event.input
        if (event.name not in REGRESSION or not isinstance(t, torch.Tensor) or not isinstance(inp, torch.Tensor)
                or not t.is_floating_point() or t.numel() == 0):
            return
        if event.kwargs.get("reduction", "mean") != "mean" or t.numel() != inp.numel():
            self._mixed = True                    # summed, or a broadcast (another check's finding)
            return
        if self._name and self._name != event.name:
            self._mixed = True
        self._name = event.name
        if self._first_step is None:
            self._first_step = event.step
        if len(self._targets) < MAX_SAMPLES:
            sample = t.detach().flatten()[:PER_SAMPLE].float().cpu()
            self._targets.append(sample)
            self._baseline.add(event.name, sample, None)

    def _judge(self) -> Finding | None:
        if not self._targets or self._mixed or len(self._sites) != 1:
            return None
        y = torch.cat(self._targets).double()
        self._targets.clear()
        mean, std = float(y.mean()), float(y.std()) if y.numel() > 1 else 0.0
        if not (math.isfinite(mean) and math.isfinite(std)) or math.hypot(mean, std) < LARGE or std <= 0:
            return None
        constant = self._baseline.value()
        _, values = self.state.losses.series()
        v = np.asarray(values, dtype=np.float64)
        v = v[np.isfinite(v)]
        if len(v) < MIN_LOSSES or constant is None or constant <= 0:
            return None
        first = float(np.median(v[:5]))
        late = float(np.median(v[-max(5, len(v) // 10):]))
        if late < NOT_LEARNED * constant:
            return None
        if self._name in BOUNDED_GRADIENT and (late >= ROSE * first or late >= float(y.abs().mean())):
            return None  # steps that overshoot: bounded gradients, so the step size, not the targets' scale
        evidence = {"target_mean": mean, "target_std": std, "loss": self._name, "first_loss": first,
                    "late_loss": late, "constant_loss": constant, "losses": int(len(v))}
        msg = (f"the regression targets are on a raw scale (mean {fmt(mean)}, std {fmt(std)}) and the model "
               f"never beat predicting their mean: the {self._name} went {fmt(first)} -> {fmt(late)} over "
               f"{len(v)} steps, while the target mean alone gives {fmt(constant)}; outputs start near 0 and "
               f"the steps cannot reach this scale, so standardise the targets")
        return self.finding(msg, evidence, location="targets", step=self._first_step)
