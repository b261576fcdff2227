"""labels: a real class dropped from the loss by ``ignore_index``.

``CrossEntropyLoss(ignore_index=0)`` belongs to a sequence model whose target 0 is the padding; copied
into a plain classifier whose class 0 is real, it drops every example of that class from the loss.
The other examples then push that class's logit down: the model never predicts it, and its share
of the evaluation set is always wrong, while the training loss looks fine.

Evidence, on sampled training steps: a cross-entropy / NLL loss over ``(N, C)`` scores with ``N``
integer targets (one per example) whose ``ignore_index`` is a class id in ``[0, C)``, in a step whose
model input was a floating-point tensor with ``N`` rows (features, not token ids: a tagger's padding
is quiet). The ignored id's share of the targets is accumulated; at the end a class that is about
as common as the others (between ``LOW`` and ``HIGH`` times ``1 / C``) over >= ``MIN_BATCHES`` batches
is a warning; a share far above (most rows marked unlabelled on purpose) is info.
"""

from __future__ import annotations

from typing import Any, Iterable

import torch

from nndoctor.checks import Check, register
from nndoctor.findings import Finding, Severity
from nndoctor.monitor.events import LossCall, ModelInput, RunEnd
from nndoctor.monitor.tensors import is_integer

__all__ = ["RealClassIgnored"]

_LOSSES = frozenset({"cross_entropy", "nll_loss"})
LOW, HIGH = 0.5, 2.0
MIN_BATCHES = 2


@register
class RealClassIgnored(Check):
    """ignore_index naming a class that the targets use like any other class."""

    code = "labels.real-class-ignored"
    needs = ("model_input", "loss", "end")
    sampled_only = frozenset({"model_input", "loss"})

    def __init__(self, state: Any) -> None:
        super().__init__(state)
        self._rows: tuple[int, int] | None = None  # (step, rows) of the latest float-input training forward
        self._hits: dict[tuple[str, int], dict[str, Any]] = {}

    def check(self, event: Any) -> Iterable[Finding]:
        if isinstance(event, ModelInput):
            if event.grad_enabled:
                x = next((a for a in event.args if isinstance(a, torch.Tensor)), None)
                self._rows = ((event.step, int(x.shape[0])) if x is not None and x.dim() >= 2
                              and x.is_floating_point() else None)
        elif isinstance(event, LossCall):
            self._on_loss(event)
        elif isinstance(event, RunEnd):
            return self._on_end()
        return ()

    def _on_loss(self, event: LossCall) -> None:
        if event.name not in _LOSSES or not event.grad_enabled or event.target is None:
            return
        scores, target = event.input, event.target
        ignore = event.kwargs.get("ignore_index", -100)
        if not isinstance(ignore, int) or ignore < 0 or not isinstance(scores, torch.Tensor) or scores.dim() != 2:
            return
        classes, n = int(scores.shape[1]), int(scores.shape[0])
        if (ignore >= classes or classes < 2 or target.dim() != 1 or not is_integer(target) or target.numel() != n
                or self._rows is None or self._rows != (event.step, n)):
            return
        hit = self._hits.setdefault((event.site or event.name, ignore), {
            "loss": event.name, "ignore_index": ignore, "classes": classes, "batches": 0, "ignored": 0, "rows": 0,
            "first_step": event.step, "site": event.site})
        hit["batches"] += 1
        hit["ignored"] += int((target == ignore).sum())
        hit["rows"] += n

    def _on_end(self) -> list[Finding]:
        out = []
        for hit in self._hits.values():
            if hit["batches"] < MIN_BATCHES or not hit["ignored"]:
                continue
            share, fair = hit["ignored"] / hit["rows"], 1.0 / hit["classes"]
            like_others = LOW * fair <= share <= HIGH * fair
            ev = {**hit, "share": round(share, 4), "fair_share": round(fair, 4), "like_other_classes": like_others}
            out.append(self.finding(
                f"{hit['loss']} is called with ignore_index={hit['ignore_index']}, a class id of its "
                f"{hit['classes']}-class scores, and {share:.0%} of the training targets are {hit['ignore_index']} "
                f"(a class takes {fair:.0%} on average) over {hit['batches']} sampled batches: every example of "
                f"class {hit['ignore_index']} is dropped from the loss, the others push its score down, so the "
                f"model never learns to predict it",
                ev, location=hit["site"] or hit["loss"], step=hit["first_step"],
                severity=None if like_others else Severity.INFO))
        return out
