"""activation: a softmax used as a hidden activation (its near-uniform rows feed a weighted layer).

Both styles are seen the same way: ``nn.Softmax`` modules and ``F.softmax`` / ``torch.softmax`` /
``x.softmax()`` in a forward all go through the function mode, which records the provenance of
their result. On sampled training steps the input of every ``nn.Linear`` of a model is looked up:
a softmax over the last dimension whose rows are near-uniform (mean row maximum below
``UNIFORM_FACTOR / width``, width >= ``MIN_WIDTH``) is a squashed hidden signal. Attention weights
(softmax into a matmul), sharp gates (Gumbel-softmax, routing: rows near one-hot) and model inputs
never match. A layer warns after ``STREAK`` sampled steps in a row.
"""

from __future__ import annotations

from typing import Any, Iterable

import torch

from nndoctor.checks import Check, register
from nndoctor.findings import Finding
from nndoctor.monitor.events import ModuleOutput

__all__ = ["SoftmaxHidden"]

MIN_WIDTH = 8
UNIFORM_FACTOR = 4.0
STREAK = 3


@register
class SoftmaxHidden(Check):
    """Near-uniform softmax rows fed as features to an nn.Linear inside the model."""

    code = "activation.softmax-as-hidden-activation"
    needs = ("module_output",)

    def __init__(self, state: Any) -> None:
        super().__init__(state)
        self._streak: dict[str, tuple[int, int]] = {}  # layer -> (last step seen, steps in a row)
        self._reported: set[str] = set()

    def check(self, event: ModuleOutput) -> Iterable[Finding]:
        module = event.module
        if not event.grad_enabled or not isinstance(module, torch.nn.Linear) or event.name in self._reported:
            return ()
        x = event.inputs[0] if event.inputs else None
        if (not isinstance(x, torch.Tensor) or not x.requires_grad or x.dim() < 2 or x.shape[-1] < MIN_WIDTH
                or x.numel() == 0):
            return ()
        observer = self.state.observer
        prov = observer.provenance(x) if observer is not None else None
        if prov is None or prov.op != "softmax":
            return ()
        if prov.dim is not None and prov.dim not in (-1, x.dim() - 1):
            return ()
        width = int(x.shape[-1])
        rows = x.detach().reshape(-1, width).float()
        row_max = float(rows.max(dim=1).values.mean())
        if row_max >= UNIFORM_FACTOR / width:
            self._streak.pop(event.name, None)
            return ()
        last, count = self._streak.get(event.name, (-1, 0))
        if event.step == last:
            return ()
        count += 1  # a sampled step whose rows were not near-uniform reset the streak above
        self._streak[event.name] = (event.step, count)
        if count < STREAK:
            return ()
        self._reported.add(event.name)
        where = prov.module or "the forward"
        evidence = {"location": event.name, "softmax_at": where, "width": width,
                    "mean_row_max": round(row_max, 5), "uniform": round(1.0 / width, 5), "steps": count}
        return [self.finding(
            f"{event.name} receives softmax output (from {where}) as its input features: rows of {width} "
            f"values that sum to 1 and are almost uniform (mean row maximum {row_max:.4f}, uniform "
            f"{1.0 / width:.4f}) at {count} sampled steps in a row; a softmax as a hidden activation squashes "
            f"the signal and its gradient by about {width}x",
            evidence, location=event.name)]
