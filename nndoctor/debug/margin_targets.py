"""preprocessing: {0, 1} labels given to a margin loss that expects -1 / +1.

``SoftMarginLoss``, ``HingeEmbeddingLoss``, ``CosineEmbeddingLoss`` and ``MarginRankingLoss`` read
their label as a sign: +1 (similar / first ranks higher) or -1. Labels made for BCE, {0, 1}, are a
common carry-over and break them silently: a 0 label gives ``soft_margin_loss`` a constant log(2) and
``margin_ranking_loss`` a constant margin (no gradient), drops the pair from ``cosine_embedding_loss``
(only similar pairs are trained: the embeddings collapse) and makes ``hinge_embedding_loss`` push both
kinds of pair the same way. Other discrete values ({1, 2} classes) are as wrong.

Evidence, on sampled training loss calls: the label tensor (the second argument of the first two
losses, the third of the last two) holds at most three distinct integer values and one of them is
not -1 or +1 (a real-valued soft-margin target is not judged). One call suffices: the label set
is exact, so this is an error.
"""

from __future__ import annotations

from typing import Any, Iterable

import torch

from nndoctor.checks import Check, register
from nndoctor.findings import Finding
from nndoctor.monitor.events import LossCall

__all__ = ["MarginLossTargets"]

#: margin losses whose label is the second argument, and those whose label is the third
_SECOND = frozenset({"soft_margin_loss", "hinge_embedding_loss"})
_THIRD = frozenset({"margin_ranking_loss", "cosine_embedding_loss"})
#: a label tensor with more distinct values than this is a real-valued target, not labels
MAX_LABELS = 3
#: values looked at per call
MAX_VALUES = 65536


def _labels(event: LossCall) -> torch.Tensor | None:
    if event.name in _SECOND:
        return event.target
    if event.name in _THIRD:
        found = event.rest[0] if event.rest else event.kwargs.get("target")
        return found if isinstance(found, torch.Tensor) else None
    return None


def _suggestion(values: list[float]) -> str:
    if set(values) <= {0.0, 1.0}:
        return "y = 2 * y - 1 (maps 0 -> -1 and 1 -> +1)"
    if len(values) == 2:
        lo, hi = values
        return f"y = torch.where(y == {lo:g}, -1.0, 1.0) (maps {lo:g} -> -1 and {hi:g} -> +1; swap if needed)"
    return "map each label to -1 (dissimilar / second ranks higher) or +1"


@register
class MarginLossTargets(Check):
    """A margin loss that reads its label as a sign gets labels other than -1 / +1 (typically {0, 1})."""

    code = "preprocessing.margin-loss-targets-not-signed"
    needs = ("loss",)
    sampled_only = frozenset({"loss"})

    def __init__(self, state: Any) -> None:
        super().__init__(state)
        self._done: set[str] = set()

    def check(self, event: LossCall) -> Iterable[Finding]:
        if not event.grad_enabled or (event.site or event.name) in self._done:
            return ()
        labels = _labels(event)
        if labels is None or labels.numel() == 0 or labels.is_complex():
            return ()
        flat = labels.detach().flatten()[:MAX_VALUES]
        if flat.is_floating_point() and not bool(torch.isfinite(flat).all()):
            return ()
        values = torch.unique(flat)
        if values.numel() > MAX_LABELS or (flat.is_floating_point() and bool((values != values.round()).any())):
            return ()  # real-valued targets (a soft-margin regression) or many classes: not sign labels
        vals = [float(v) for v in values.tolist()]
        bad = [v for v in vals if v not in (-1.0, 1.0)]
        if not bad:
            return ()
        self._done.add(event.site or event.name)
        share = float(torch.isin(flat, torch.tensor(bad, dtype=flat.dtype, device=flat.device)).float().mean())
        shown = ", ".join(f"{v:g}" for v in vals)
        position = "third" if event.name in _THIRD else "second"
        ev = {"loss": f"F.{event.name}", "label_values": [f"{v:g}" for v in vals], "bad_values": [f"{v:g}" for v in bad],
              "bad_share": round(share, 4), "label_argument": position, "label_shape": tuple(labels.shape),
              "site": event.site, "suggestion": _suggestion(vals)}
        effect = {
            "soft_margin_loss": "a 0 label gives the constant loss log(2) and no gradient",
            "margin_ranking_loss": "a 0 label gives the constant loss `margin` and no gradient",
            "cosine_embedding_loss": "a 0 label gives zero loss, so dissimilar pairs are never pushed apart and "
                                     "the embeddings collapse",
            "hinge_embedding_loss": "a 0 label is neither similar nor dissimilar and both terms push the same way",
        }[event.name]
        return [self.finding(
            f"F.{event.name} reads its {position} argument as a sign label (+1 / -1) but gets labels {{{shown}}} "
            f"({share:.0%} of them not +-1) at {event.site or 'the loss'}: {effect}; these pairs teach the "
            f"model nothing or the wrong thing",
            ev, location=event.site or f"F.{event.name}")]
