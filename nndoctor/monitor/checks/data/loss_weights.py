"""How the training loss weights its classes, so that "chance level" is priced the way the script pays it.

A class-weighted loss changes what predicting the class priors costs: ``cross_entropy(weight=w)``
(reduction ``mean``) divides by the summed weights of the batch's targets, so the best constant
prediction is ``q ~ w * counts`` and costs the entropy of ``q`` (``log C`` for balanced weights),
while the unweighted prior entropy of a 60/38/2 split is 0.75 nats against 1.10. Comparing a
weighted training loss with the unweighted chance level calls a learning model "at chance".

:class:`LossWeights` keeps the per-class ``weight=`` of ``cross_entropy`` / ``nll_loss`` and the
scalar ``pos_weight=`` of ``binary_cross_entropy_with_logits`` seen on training loss calls.
Any other weighting (per-example ``weight=`` of the binary losses, a per-column ``pos_weight``,
weights that change between calls) makes the chance level unknown: ``known`` turns ``False``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

__all__ = ["LossWeights"]

CLASS_LOSSES = ("cross_entropy", "nll_loss")
POS_WEIGHT_LOSSES = ("binary_cross_entropy_with_logits",)


@dataclass
class LossWeights:
    """The training loss's class weighting, as far as it is one fixed, known weighting."""

    class_weight: np.ndarray | None = None
    pos_weight: float | None = None
    #: some weighted call was not a per-class / scalar positive weighting, or the weights changed
    unknown: bool = False
    _last: list[Any] = field(default_factory=list, repr=False)  # the tensors last read (read once each)

    @property
    def known(self) -> bool:
        return not self.unknown

    def note(self, loss: str, kwargs: dict[str, Any]) -> None:
        """Read the ``weight=`` / ``pos_weight=`` of one training loss call that has either."""
        if self.unknown:
            return
        w, pw = kwargs.get("weight"), kwargs.get("pos_weight")
        if len(self._last) == 2 and w is self._last[0] and pw is self._last[1]:
            return  # the same buffers as last time (a loss module's): nothing new to read
        self._last = [w, pw]
        if loss in CLASS_LOSSES and pw is None and isinstance(w, torch.Tensor) and w.dim() == 1:
            self._set_class(w.detach().float().cpu().numpy())
        elif loss in POS_WEIGHT_LOSSES and w is None and isinstance(pw, torch.Tensor) and pw.numel() == 1:
            self._set_pos(float(pw.detach().float().cpu().reshape(())))
        else:
            self.unknown = True

    def _set_class(self, w: np.ndarray) -> None:
        if self.pos_weight is not None or (self.class_weight is not None and (
                self.class_weight.shape != w.shape or not np.allclose(self.class_weight, w))):
            self.unknown = True
        self.class_weight = w

    def _set_pos(self, pw: float) -> None:
        if self.class_weight is not None or (self.pos_weight is not None and not np.isclose(self.pos_weight, pw)):
            self.unknown = True
        self.pos_weight = pw
