"""The part of a training loss no model can remove: binary cross entropy on soft targets.

BCE against targets strictly between 0 and 1 (the grey levels of images reconstructed by an
autoencoder or a VAE, label smoothing) costs at least the targets' own binary entropy, even for a
perfect model. A check that asks how far the loss fell ("the model learns anyway") must measure
the reducible part, ``loss - floor``: a VAE whose summed BCE fell from 543 to 181 per image on
digits whose entropy is 124 has removed 86% of what it could, not 67%.

:class:`SoftTargetFloor` reads the targets of a few training BCE calls, in the call's own
reduction (``mean``, or ``sum`` also through the legacy ``size_average=False``), and gives the
median of the latest ones: the floor of the recorded loss when the BCE is all, or the bulk, of it
(the caller checks that the floor sits below the losses it compares). A summed BCE is often divided
by the batch size before it is recorded (``(bce + kld) / x.size(0)``: the loss per image, timbmg's
VAE): its floor is then the per-example sum, which is also kept; the larger of the two that lies
below the losses compared is the floor (the batch total exceeds a per-example loss).
"""

from __future__ import annotations

import statistics
from collections import deque
from typing import Any

import torch

from nndoctor.monitor.events import reduction_of

__all__ = ["SoftTargetFloor", "BCE_LOSSES"]

BCE_LOSSES = frozenset({"binary_cross_entropy", "binary_cross_entropy_with_logits"})
#: calls read: the first ones, then one in EVERY (the floor of a fixed data set barely moves)
FIRST_CALLS = 8
EVERY = 25
KEPT = 16
#: a floor below this share of the loss is no floor worth subtracting (hard 0/1 targets)
MIN_SHARE = 0.02


class SoftTargetFloor:
    """The median binary entropy of recent soft BCE targets, in their loss call's reduction."""

    def __init__(self) -> None:
        self.calls = 0
        self.values: deque[float] = deque(maxlen=KEPT)  # in the call's own reduction
        self.per_example: deque[float] = deque(maxlen=KEPT)  # a summed call's entropy per example

    def see(self, name: str, target: Any, kwargs: dict[str, Any], grad_enabled: bool) -> None:
        if not grad_enabled or name not in BCE_LOSSES or not isinstance(target, torch.Tensor):
            return
        self.calls += 1
        if self.calls > FIRST_CALLS and self.calls % EVERY:
            return
        red = reduction_of(kwargs)
        if red not in ("mean", "sum") or not target.is_floating_point() or not target.numel() \
                or kwargs.get("weight") is not None or kwargs.get("pos_weight") is not None:
            return
        t = target.detach().float().clamp(1e-6, 1 - 1e-6)
        ent = -(t * t.log() + (1 - t) * (1 - t).log())
        self.values.append(float(ent.sum() if red == "sum" else ent.mean()))
        if red == "sum" and t.dim() >= 1 and t.shape[0] > 1:
            self.per_example.append(float(ent.sum()) / t.shape[0])

    def floor(self, *losses: float) -> float:
        """The floor, when it lies below every loss given and is a real part of them (else 0): the
        call's own reduction, or for a summed BCE its per-example sum (the loss divided by the batch)."""
        for kept in (self.values, self.per_example):  # the batch total first: the larger floor
            if kept:
                f = statistics.median(kept)
                if f > 0 and all(f < x for x in losses) and f >= MIN_SHARE * min(losses):
                    return f
        return 0.0
