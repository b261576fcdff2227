"""labels: noise added to regression targets in the training step, as large as the targets' spread.

``loss = F.mse_loss(model(xb), yb + 2.0 * torch.randn_like(yb))`` on targets of std 1 trains the
model on targets that are mostly noise: the loss cannot fall below the noise's variance (here
four times the constant prediction's loss), its gradients are dominated by noise, and a curve that
plateaus high hides a model that may have learnt the signal, or not. Target jitter meant as
regularisation is a small fraction of the targets' spread.

The random tensors are followed exactly as for input noise
(:class:`~nndoctor.monitor.checks.input_noise.InputNoiseDrownsSignal`, whose op tracking this check
shares): drawn on a sampled training step outside the model's modules, scaled by numbers, added to a
tensor of the same shape that needs no gradient (``y + s * randn_like(y)``, ``torch.normal(y, s)``,
``y.add_(noise)``, per example in ``__getitem__`` and collated by ``torch.stack``). When such a sum,
made in the same step, is the target of a regression loss (``mse``/``l1``/``smooth_l1``/``huber``)
the ratio ``||noise - mean|| / ||y - batch mean of y||`` is recorded, once per step.

Reported over at least 3 sampled steps at the end of the run (a median ratio >= 1 is a warning,
>= 0.7 info), or during the run once 5 sampled steps give a warning's median; with several
optimizers it is info only. Quiet: noise drawn once when a synthetic data set is made (``y = f(x) +
noise`` is the data), noise that is itself the target (diffusion, denoising: not a sum with data),
noise on the inputs, and a noised tensor that is also the model's input in that step (an
autoencoder of noisy data: the noise is in the input too).
"""

from __future__ import annotations

import math
from typing import Any

import torch

from nndoctor.checks import register
from nndoctor.debug.truncation import REGRESSION
from nndoctor.monitor.checks.input_noise import InputNoiseDrownsSignal
from nndoctor.monitor.events import LossCall, ModelInput

__all__ = ["TargetNoiseDrownsSignal"]

WARN_RATIO = 1.0
INFO_RATIO = 0.7


@register
class TargetNoiseDrownsSignal(InputNoiseDrownsSignal):
    """Noise added to the regression targets in the training step, as large as their own spread.

    The op tracking, the sampling and the judging are the input-noise check's; the samples come from
    the loss's target instead of the model's input."""

    code = "labels.target-noise-too-strong"
    warn_ratio = WARN_RATIO
    info_ratio = INFO_RATIO
    dataset_part = 1  # numpy noise in a dataset item's target

    def __init__(self, state: Any) -> None:
        super().__init__(state)
        self._target_step = -1
        self._input_noise: tuple[int, list[Any]] = (-1, [])  # (step, noised model inputs of that step)

    def _on_input(self, event: ModelInput) -> None:
        if not (event.sampled and event.grad_enabled and event.training):
            return
        step, seen = self._input_noise
        if step != event.step:
            self._input_noise = (event.step, seen := [])
        for a in (*event.args, *event.kwargs.values()):
            noised = self._get(self._noised, a)
            if noised is not None and len(seen) < 8:
                seen.append(noised[1])

    def _on_loss(self, event: LossCall) -> bool:
        """Whether a sample was added: a regression target that is data plus noise drawn this step."""
        if not event.grad_enabled or event.name not in REGRESSION or self._target_step == event.step \
                or not isinstance(event.target, torch.Tensor):
            return False
        noised = self._get(self._noised, event.target)
        if noised is None or noised[1].made != event.step or not math.isfinite(noised[1].ratio) \
                or len(self._samples) >= 1024:
            return False
        step, inputs = self._input_noise
        if step == event.step and any(n is noised[1] for n in inputs):
            return False  # the model's input carries the same noise (an autoencoder of noisy data)
        self._target_step = event.step
        self._samples.append(noised[1])
        return True

    def _message(self, site: str, median: float, steps: int, evidence: dict[str, Any]) -> str:
        evidence["suggested_scale"] = round(min(1.0, 0.3 / median), 3)
        evidence["loss_floor_share"] = round(median * median, 3)
        over = f" (median over {steps} sampled steps)" if steps else ""
        return (f"the noise added to the regression targets at {site or 'an unknown line'} is {median:.2g}x "
                f"the targets' own spread{over}: the model is trained to fit "
                f"noise as large as the signal, and its loss cannot fall below the noise's variance "
                f"(~{median * median:.2g}x the constant prediction's loss)")
