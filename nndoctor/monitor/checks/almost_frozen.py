"""grad-flow: almost nothing trains: a handful of values learn while the model is frozen and the
loss stays at the constant-prediction level.

A "freeze the backbone" loop that freezes every parameter and unfreezes by a name that matches
nothing (``name.startswith("classifier")`` on an ``nn.Sequential``), ``model.requires_grad_(False)``
applied to the whole model instead of its backbone, or an optimizer over a learned temperature and
a frozen model: the optimizer still holds a few trainable values (a temperature, a scale, a
bias), so the checks that need every parameter frozen stay quiet, and only a plateau is seen.

Evidence, read at the curve reads from ~50 losses on and at the end of the run:

* the live optimizers train (``requires_grad``) at most ``MAX_TRAINED`` values in all;
* the models that ran hold >= ``MIN_FROZEN`` frozen values (``requires_grad=False``), at least
  ``RATIO`` times the trained ones;
* the training loss sits at the constant-prediction level: its level at the end is at least
  ``AT_CHANCE`` of the loss of predicting the class priors (or the targets' mean), and it never
  got clearly below it (the frozen model is not a trained one).

Deliberate small trained parts stay quiet: temperature scaling of a trained model (the loss
starts far below the constant prediction), prompt tuning, linear probing, BitFit and an echo
state network's readout (hundreds of values or more train).
"""

from __future__ import annotations

from typing import Any, Iterable

import torch

from nndoctor.checks import Check, register
from nndoctor.findings import Finding, Severity
from nndoctor.monitor.curves import analyze_losses
from nndoctor.monitor.events import CurveDue, RunEnd

__all__ = ["AlmostAllFrozen"]

MAX_TRAINED = 16  # trained values: a temperature, a scale, a per-class bias...
MIN_FROZEN = 1000  # frozen values of the models that ran
RATIO = 100  # frozen values per trained value
AT_CHANCE = 0.9  # the loss level, as a share of the constant prediction's, that counts as "at it"
MIN_LOSSES = 45


def _names(names: list[str], k: int = 3) -> str:
    return ", ".join(names[:k]) + (f" and {len(names) - k} more" if len(names) > k else "")


@register
class AlmostAllFrozen(Check):
    """Only a handful of values train; the model they sit on is frozen and the loss at chance."""

    code = "grad-flow.almost-all-frozen"
    needs = ("curve", "end")

    def __init__(self, state: Any) -> None:
        super().__init__(state)
        self._done = False

    def check(self, event: CurveDue | RunEnd) -> Iterable[Finding]:
        if self._done:
            return ()
        base = self.state.extra.get("nndoctor.loss_baseline")
        if self.state.losses.total < MIN_LOSSES or not isinstance(base, (int, float)) or not base > 0:
            return ()
        # (the trained values first: a count of a few tensors, where the curve's analysis is not)
        trained: dict[int, tuple[str, int]] = {}
        n_trained = 0
        for _, opt in self.state.live_optimizers():
            for group in opt.param_groups:
                for p in group["params"]:
                    if isinstance(p, torch.Tensor) and p.requires_grad and id(p) not in trained:
                        trained[id(p)] = (self.state.param_name(p), p.numel())
                        n_trained += p.numel()
                        if n_trained > MAX_TRAINED:
                            return ()
        if not trained:
            return ()
        curve = analyze_losses(self.state)
        if curve.n < MIN_LOSSES:
            return ()
        if not (curve.end == curve.end and curve.end >= AT_CHANCE * base and curve.minimum >= 0.8 * base):
            return ()  # the loss got below the constant prediction: something useful trains
        frozen_tensors, n_frozen, models = 0, 0, []
        for info, model in self.state.live_models():
            frozen = [p for p in model.parameters() if not p.requires_grad and id(p) not in trained]
            if frozen:
                models.append(info.name)
                frozen_tensors += len(frozen)
                n_frozen += sum(p.numel() for p in frozen)
        if n_frozen < MIN_FROZEN or n_frozen < RATIO * n_trained:
            return ()
        self._done = True
        names = sorted(name for name, _ in trained.values())
        ev = {"trained_values": n_trained, "trained": names, "frozen_values": n_frozen,
              "frozen_tensors": frozen_tensors, "models": models, "loss": round(curve.end, 6),
              "constant_prediction_loss": round(float(base), 6)}
        return [self.finding(
            f"almost nothing trains: the optimizer updates only {n_trained} value{'s' if n_trained > 1 else ''} "
            f"({_names(names)}) while all {frozen_tensors} parameter tensors ({n_frozen:,} values) of "
            f"{_names(models)} have requires_grad=False, and the loss stays at the constant-prediction level "
            f"({curve.end:.4g} vs {base:.4g}): the model was frozen by mistake (a freeze loop, or an unfreeze "
            f"filter that matches no parameter name)",
            ev, location=_names(models), severity=Severity.WARNING, step=self._last_step())]

    def _last_step(self) -> int:
        steps, _ = self.state.losses.series()
        return int(steps[-1]) if len(steps) else self.state.step
