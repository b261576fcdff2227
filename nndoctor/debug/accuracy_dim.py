"""shape: predicted classes taken with ``argmax()`` / ``max()`` without a dim (or over the batch dim).

An accuracy is computed as ``(out.argmax() == y)``: without ``dim``, ``argmax`` returns ONE index into
the flattened ``(N, C)`` logits and ``max`` one value, and the comparison broadcasts that scalar over
the ``N`` labels; ``argmax(0)`` / ``max(0)`` picks, for each class, the row that scores it highest
(``C`` indices), which only broadcasts against ``(N, 1)`` labels (or ``N == C``). No error is raised
and the reported accuracy is meaningless (about the share of one class, or 0).

Evidence, in training steps and evaluation loops: an ``argmax`` / ``max`` of a floating tensor of
``N >= 2`` rows and >= 2 dims taken without ``dim`` or over dim 0 (the batch), whose result (also
after ``cpu``/``detach``/``squeeze``/``flatten``/casts) is compared (``eq`` / ``ne``, ``==`` / ``!=``)
with a tensor of ``N`` elements that is not per-sample in the same way (its element count differs from
the prediction's). Two such comparisons make the warning. ``argmax(1)``/``argmax(-1)`` on ``(N, C)``,
a class-major ``(C, N)`` tensor reduced over dim 0, one sample's logits and per-sample argmaxes that
are not compared with labels stay quiet.
"""

from __future__ import annotations

from typing import Any, Iterable

import torch

from nndoctor.checks import Check, register
from nndoctor.findings import Finding
from nndoctor.monitor.events import OpCall, RunEnd
from nndoctor.monitor.functions import user_site
from nndoctor.monitor.marks import TensorMarks

__all__ = ["MIN_COMPARISONS", "PredictionOverWrongDim", "reduced_dim"]

MIN_COMPARISONS = 2
_PRED = frozenset({"argmax", "max"})
_CMP = frozenset({"eq", "ne"})
_CARRY = frozenset({"cpu", "detach", "squeeze", "flatten", "long", "to", "int"})
_MAX_KEPT = 256


def reduced_dim(name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[bool, int | None] | None:
    """``(True, None)`` for a reduction over every element, ``(True, d)`` over dim ``d``, None when the
    call is no reduction (``torch.max(a, b)``: elementwise)."""
    dim = kwargs.get("dim", args[1] if len(args) > 1 else None)
    if isinstance(dim, torch.Tensor):
        return None if name == "max" else (True, None)
    if dim is None:
        return True, None
    if isinstance(dim, bool) or not isinstance(dim, int):
        return None
    return True, dim


@register
class PredictionOverWrongDim(Check):
    """Class predictions that are one scalar or per-class indices, compared with the labels."""

    code = "shape.accuracy-argmax-wrong-dim"
    needs = ("op", "end")
    ops = _PRED | _CMP | _CARRY
    eval_ops = _PRED | _CMP | {"cpu", "squeeze"}  # (casts and views are everywhere in an evaluation forward)

    def __init__(self, state: Any) -> None:
        super().__init__(state)
        self._preds: TensorMarks[dict[str, Any]] = TensorMarks(_MAX_KEPT)
        self._hits: list[dict[str, Any]] = []

    def check(self, event: Any) -> Iterable[Finding]:
        if event.kind == "op":
            name = event.name
            if name in _PRED:
                self._on_pred(event)
            elif self._preds:
                if name in _CMP:
                    self._on_compare(event)
                else:
                    self._carry(event)
        elif event.kind == "end":
            return self._on_end(event)
        return ()

    def _on_pred(self, event: OpCall) -> None:
        x = event.args[0] if event.args else None
        if not isinstance(x, torch.Tensor) or not x.is_floating_point() or x.dim() < 2 or x.shape[0] < 2:
            return
        reduced = reduced_dim(event.name, event.args, event.kwargs)
        if reduced is None:
            return
        dim = reduced[1]
        if dim is not None and dim % x.dim() != 0:
            return  # over a class (or later) dim: per-sample predictions
        result = event.result
        if isinstance(result, tuple):  # max(dim) -> (values, indices)
            result = result[1] if len(result) == 2 else None
        if isinstance(result, torch.Tensor):
            written = f"{event.name}()" if dim is None else f"{event.name}(dim={dim})"
            self._preds.put(result, {"op": written, "input_shape": tuple(x.shape), "n": int(x.shape[0]),
                                "site": user_site(), "module": event.module, "step": event.step})

    def _carry(self, event: OpCall) -> None:
        info = self._preds.get(event.args[0] if event.args else None)
        if info is not None and isinstance(event.result, torch.Tensor):
            self._preds.put(event.result, info)

    def _on_compare(self, event: OpCall) -> None:
        if len(event.args) < 2:
            return
        a, b = event.args[0], event.args[1]
        for pred, other in ((a, b), (b, a)):
            info = self._preds.get(pred)
            if info is None or not isinstance(other, torch.Tensor) or other.dim() == 0:
                continue
            if other.numel() != info["n"] or pred.numel() == other.numel():
                continue
            if other.is_floating_point() and not bool((other == other.round()).all()):
                continue  # not labels
            result = event.result
            acc = float(result.float().mean()) if isinstance(result, torch.Tensor) and result.numel() else None
            self._hits.append({**info, "labels_shape": tuple(other.shape), "pred_shape": tuple(pred.shape),
                               "accuracy": None if acc is None else round(acc, 4),
                               "compare_site": user_site(), "compare_step": event.step})
            return

    def _on_end(self, event: RunEnd) -> list[Finding]:
        if len(self._hits) < MIN_COMPARISONS:
            return []
        hit = self._hits[0]
        what = ("one index into the flattened tensor" if "()" in hit["op"] and hit["op"].startswith("argmax")
                else "one value" if "()" in hit["op"] else "one index per class (over the batch dim)")
        acc = f" (it gives {hit['accuracy']:.0%})" if hit["accuracy"] is not None else ""
        return [self.finding(
            f"the predicted classes are {hit['op']} of a {hit['input_shape']} tensor"
            f"{' at ' + hit['site'] if hit['site'] else ''}: {what}, shape {hit['pred_shape']}, compared with "
            f"{hit['labels_shape']} labels by broadcasting in {len(self._hits)} comparisons; the accuracy is "
            f"meaningless{acc}: take the class dim, argmax(dim=1)",
            {**hit, "comparisons": len(self._hits)}, location=hit["site"], step=hit["step"])]
