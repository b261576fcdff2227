"""loss-input: the model's output and the loss disagree."""

from __future__ import annotations

from typing import Iterable

import torch

from nndoctor.checks import Check, register
from nndoctor.findings import Finding, Severity
from nndoctor.monitor.events import LossCall

__all__ = ["ProbabilitiesIntoLogitLoss"]

_LOGIT_LOSSES = {"cross_entropy": "softmax", "binary_cross_entropy_with_logits": "sigmoid"}


def _rows_are_probabilities(x: torch.Tensor, dim: int = 1) -> bool:
    if x.dim() < 2 or x.shape[dim] < 2 or not x.is_floating_point():
        return False
    x = x.detach().float()
    if x.min().item() < 0:
        return False
    sums = x.sum(dim)
    return bool(torch.allclose(sums, torch.ones_like(sums), atol=1e-3))


@register
class ProbabilitiesIntoLogitLoss(Check):
    """Softmax/sigmoid outputs fed to a loss that applies softmax/sigmoid itself."""

    code = "loss-input.probabilities-into-logit-loss"
    severity = Severity.ERROR
    needs = ("loss",)
    fixes = (
        "Pass the raw scores (logits) to {loss}: remove the final {activation} from the model "
        "or from the line that feeds the loss ({site}).",
        "If you need probabilities for metrics or inference, apply {activation} there only, "
        "outside the loss computation.",
    )

    def check(self, event: LossCall) -> Iterable[Finding]:
        expects = _LOGIT_LOSSES.get(event.name)
        if expects is None:
            return ()
        prov = event.provenance
        by_provenance = prov is not None and prov.op == expects
        by_value = event.name == "cross_entropy" and _rows_are_probabilities(event.input)
        if not (by_provenance or by_value):
            return ()
        how = (f"produced by {prov.op}" + (f" in {prov.module}" if prov.module else "")
               if by_provenance else "every row is non-negative and sums to 1")
        loss = f"F.{event.name}"
        evidence = {"loss": loss, "activation": expects, "input_shape": tuple(event.input.shape),
                    "how_detected": how, "site": event.site}
        return [self.finding(
            f"{loss} expects logits but receives {expects} probabilities ({how}); "
            f"the loss applies {expects} again, which flattens gradients and slows or stalls learning",
            evidence, location=event.site or loss)]
