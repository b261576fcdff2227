"""init: the cross-entropy at initialisation is far above that of a uniform guess.

"Verify the loss at init" (Karpathy's recipe; the field guide's "overfit a single batch" starts
there): a classifier whose output layer starts small predicts about uniformly over its C classes,
so its first cross-entropy is about ln(C) (2.3 for 10 classes, 4.2 for 65 characters). A first
loss several times that means the logits start large and confidently wrong: weights initialised
far too large (``normal_(std=2.0)`` where 0.02 was meant, an N(0, 1) embedding tied to the output),
and the first hundreds of steps go to shrinking them instead of learning. Normalisation layers
hide such a scale from the layer-by-layer check (:mod:`.init`): only the loss shows it.

The check reads the first training call of ``cross_entropy`` with class-index targets (the logits
the model produced before any update) and computes the plain per-target cross-entropy itself
(``logsumexp(z) - z[y]``, averaged over the targets in range: whatever the script's reduction,
class weights or ignored index). A warning at the end of the run when it is at least
:data:`RATIO` x ln(C) and :data:`EXCESS` nats above it, unless another finding explains the scale
(an ``init`` warning of the layer-by-layer check, unnormalised inputs) .
"""

from __future__ import annotations

import math
from typing import Any, Iterable

import torch

from nndoctor.checks import Check, register
from nndoctor.findings import Finding
from nndoctor.monitor.events import LossCall, RunEnd
from nndoctor.monitor.tensors import local

__all__ = ["InitialLossTooHigh"]

RATIO = 3.0  # first cross-entropy / ln(C)
EXCESS = 3.0  # ... and at least this many nats above ln(C)
MIN_TARGETS = 8
#: std * sqrt(fan_in) of the largest Linear/conv weight above which the initial weights are "too large"
#: (PyTorch's default init ~0.58, He ~1.41); below it a high first loss comes from scaled logits by design
LARGE_WEIGHTS = 4.0
_EXPLAINED_BY = ("init.", "preprocessing.", "loss-input.")


@register
class InitialLossTooHigh(Check):
    """The first training cross-entropy is several times ln(C): logits start large and wrong."""

    code = "init.initial-loss-too-high"
    needs = ("loss", "end")

    def __init__(self, state: Any) -> None:
        super().__init__(state)
        self._seen = False
        self._first: dict[str, Any] | None = None

    def check(self, event: LossCall | RunEnd) -> Iterable[Finding]:
        if isinstance(event, RunEnd):
            return self._judge()
        if self._seen or not event.grad_enabled or event.name != "cross_entropy":
            return ()
        x, y = event.input, event.target
        if not (isinstance(x, torch.Tensor) and isinstance(y, torch.Tensor) and x.requires_grad):
            return ()  # (an evaluation call, or no graph: not the training loss)
        self._seen = True  # only the first training call: the logits before any update
        if y.is_floating_point() or x.dim() < 2 or x.dim() != y.dim() + 1 or not x.is_floating_point():
            return ()  # soft / probability targets, or shapes this check does not read
        with torch.no_grad():
            self._first = self._measure(x.detach(), y.detach(), event)
            first = self._first
            if first is not None and first["initial_loss"] >= RATIO * first["uniform_loss"]:
                first["weight_scale"] = self._weight_scale()  # (read only for a first loss that high)
        return ()

    def _weight_scale(self) -> float:
        """The largest ``std * sqrt(fan_in)`` of the models' Linear / conv / embedding weights now (before the first
        update): ~0.58 for PyTorch's default init, ~1.4 for He; far above it, the weights are too large."""
        top = 0.0
        for _, model in self.state.live_models():
            for m in model.modules():
                # (an embedding too: tied to the output, its N(0, 1) rows are the output layer's weights)
                if isinstance(m, (torch.nn.Linear, torch.nn.modules.conv._ConvNd, torch.nn.Embedding)):
                    w = m.weight
                    if not (isinstance(w, torch.Tensor) and w.dim() >= 2 and w.is_floating_point()):
                        continue
                    shard = local(w).detach()  # (this rank's shard of a sharded weight: no communication)
                    if shard.numel() > 1:
                        top = max(top, float(shard.float().std()) * math.sqrt(math.prod(w.shape[1:])))
        return round(top, 3)

    @staticmethod
    def _measure(x: torch.Tensor, y: torch.Tensor, event: LossCall) -> dict[str, Any] | None:
        classes = int(x.shape[1])
        if classes < 2:
            return None
        z = x.movedim(1, -1).reshape(-1, classes).float()
        t = y.reshape(-1).long()
        keep = (t >= 0) & (t < classes)  # (the ignored index, -100 or -1, and padding out of range)
        if int(keep.sum()) < MIN_TARGETS:
            return None
        z, t = z[keep], t[keep]
        ce = float((torch.logsumexp(z, dim=1) - z.gather(1, t[:, None]).squeeze(1)).mean())
        spread = float(z.std(dim=1).mean())
        if not (math.isfinite(ce) and math.isfinite(spread)):
            return None  # a non-finite loss is numerics' business
        return {"initial_loss": round(ce, 4), "uniform_loss": round(math.log(classes), 4), "classes": classes,
                "logit_std": round(spread, 4), "step": event.step, "loss_site": event.site or event.name}

    def _judge(self) -> list[Finding]:
        first, self._first = self._first, None
        if first is None:
            return []
        ce, uniform = first["initial_loss"], first["uniform_loss"]
        if ce < RATIO * uniform or ce - uniform < EXCESS:
            return []
        if first.get("weight_scale", LARGE_WEIGHTS) < LARGE_WEIGHTS:
            return []  # layers at a normal scale: logits scaled by design (ArcFace / CosFace s * cos), not the init
        observer = getattr(self.state, "observer", None)
        others = getattr(observer, "findings", ()) or ()
        if any(f.code.startswith(_EXPLAINED_BY) and f.severity.rank >= 1 for f in others):
            return []  # the layer-by-layer init check or the inputs already explain the scale
        ratio = ce / uniform
        evidence = {**first, "ratio": round(ratio, 3)}
        msg = (f"the first training cross-entropy is {ce:.3g}, {ratio:.2g}x the {uniform:.3g} (ln {first['classes']}) "
               f"of a uniform guess over {first['classes']} classes: the logits start with a spread of "
               f"{first['logit_std']:.3g} across classes (a well-initialised output layer starts near 0), so the "
               f"model starts confidently wrong and its first steps go to undoing the initial scale; the "
               f"initial weights are far too large (or pretrained weights do not match these labels)")
        return [self.finding(msg, evidence, location=str(first["loss_site"]), step=first["step"])]
