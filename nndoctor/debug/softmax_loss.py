"""loss-input: a softmax classifier trained with a regression or margin loss instead of cross-entropy.

Ported Keras programs often keep ``Dense(K, activation='softmax')`` with ``loss='mean_squared_error'``
(or ``'categorical_hinge'``): in PyTorch, softmax outputs into ``F.mse_loss`` / ``F.l1_loss`` against
one-hot rows, or into ``F.multi_margin_loss`` against class ids. It runs, but the gradient reaching
the logits is the squared error times the softmax's Jacobian: about ``1/K`` of cross-entropy's at the
start, and near zero for a confidently wrong prediction, so plain SGD barely moves and training stalls
near chance (cross-entropy on the logits has neither problem).

Evidence: on training loss calls (grad enabled, input requiring grad), the loss input is the output
of a softmax over its last dimension of ``K >= 2`` classes (provenance), and the targets are hard
class targets: one-hot rows of the input's shape (every value 0 or 1, one 1 a row) for the regression
losses, class ids for the margin loss. Soft targets (a teacher's probabilities in distillation, label
smoothing) are not this bug and stay quiet. Judged at the end of the run: when the training loss
plateaued or fell by less than ``STALLED_FALL`` over the run, a warning (the stall is there to see);
when it trained well anyway (Adam often copes), info.
"""

from __future__ import annotations

from typing import Any, Iterable

import torch

from nndoctor.checks import Check, register
from nndoctor.debug.loss_input import loss_label
from nndoctor.findings import Finding, Severity
from nndoctor.monitor.curves import analyze_losses
from nndoctor.monitor.events import LossCall, RunEnd

__all__ = ["SoftmaxIntoRegressionLoss"]

_REGRESSION = frozenset({"mse_loss", "l1_loss", "smooth_l1_loss", "huber_loss"})
_MARGIN = frozenset({"multi_margin_loss"})
#: a training loss that fell by less than this share of its start over the run has stalled
STALLED_FALL = 0.1
MIN_LOSSES = 50


def _hard_class_targets(name: str, pred: torch.Tensor, target: torch.Tensor) -> bool:
    if name in _MARGIN:
        return not target.is_floating_point() and target.dim() == 1 and target.shape[0] == pred.shape[0]
    if tuple(target.shape) != tuple(pred.shape) or not target.is_floating_point():
        return False
    t = target.detach()[:4096].float()
    binary = bool(((t == 0) | (t == 1)).all())
    return binary and bool((t.sum(-1) == 1).all())


@register
class SoftmaxIntoRegressionLoss(Check):
    """Softmax probabilities trained with MSE/L1/margin loss against hard class targets."""

    code = "loss-input.softmax-into-regression-loss"
    needs = ("loss", "end")

    def __init__(self, state: Any) -> None:
        super().__init__(state)
        #: the first matching call: its evidence, location and step
        self._seen: tuple[dict[str, Any], str, int] | None = None
        self._settled = False

    def check(self, event: LossCall | RunEnd) -> Iterable[Finding]:
        if isinstance(event, RunEnd):
            return self._judge()
        if self._settled or event.name not in _REGRESSION | _MARGIN or event.target is None:
            return ()
        if not (event.grad_enabled and event.input.requires_grad):
            return ()
        prov, pred = event.provenance, event.input
        if prov is None or prov.op != "softmax" or pred.dim() != 2 or pred.shape[1] < 2:
            return ()
        dim = prov.dim if prov.dim is not None else 1
        if dim % pred.dim() != 1:
            return ()  # softmax over the batch: loss-input.softmax-over-batch-dim
        self._settled = True  # the first training call decides
        if not _hard_class_targets(event.name, pred, event.target):
            return ()  # soft targets (distillation, label smoothing): a legitimate use
        k = int(pred.shape[1])
        kind = "one-hot rows" if event.name in _REGRESSION else "class ids"
        location = prov.module or event.site or event.name
        ev = {"loss": loss_label(event.name), "classes": k, "targets": kind, "input_shape": tuple(pred.shape),
              "site": event.site, "location": location}
        self._seen = (ev, location, event.step)
        return ()

    def _judge(self) -> list[Finding]:
        if self._seen is None:
            return []
        ev, location, step = self._seen
        self._seen = None
        curve = analyze_losses(self.state)
        if curve.n < MIN_LOSSES:
            return []
        fell = (curve.start - curve.end) / curve.start if curve.start > 0 else 0.0
        stalled = curve.has("plateaus") or fell < STALLED_FALL
        ev = {**ev, "start_loss": round(curve.start, 6), "end_loss": round(curve.end, 6),
              "loss_fall": round(fell, 3), "stalled": stalled}
        how = (f"and training stalled: the loss went {curve.start:.4g} -> {curve.end:.4g} "
               f"({fell:.0%} lower) in {curve.n} steps" if stalled else
               f"it trained here ({curve.start:.4g} -> {curve.end:.4g}), but cross-entropy on the logits "
               f"usually trains faster and further")
        return [self.finding(
            f"{ev['loss']} trains softmax outputs of {ev['classes']} classes against {ev['targets']}: a "
            f"regression/margin loss on probabilities gives the logits gradients ~1/{ev['classes']} of "
            f"cross-entropy's, vanishing for confident mistakes; {how}",
            ev, location=location, severity=Severity.WARNING if stalled else Severity.INFO, step=step)]
