"""shape: time-major sequence outputs flattened against batch-major targets.

``nn.LSTM`` / ``nn.GRU`` / ``nn.RNN`` and ``nn.Transformer*`` are sequence-first unless
``batch_first=True``: a model that transposes its ``(N, T)`` batch for them returns ``(T, N, C)``
scores. ``F.cross_entropy(out.reshape(-1, C), y.reshape(-1))`` with targets ``y`` of shape ``(N, T)``
then pairs the score of (step t, sequence n) with the target of another (sequence, step): the shapes
agree, nothing crashes, and the model is trained on labels that do not belong to its inputs (the
loss stays near chance, or it learns position priors only).

Evidence: on sampled training steps, the root model's input is ``(N, T, ...)`` (``N != T``) and its
output a tensor ``(T, N, C)``; a cross-entropy / NLL loss receives that output flattened without a
copy (a ``(T * N, C)`` view of the same memory: no transpose back) and ``T * N`` targets that are a
view of a ``(K, T)`` tensor (a batch-major target matrix or a slice of one, flattened with
``reshape``/``view``). ``MIN_CALLS`` such sampled losses make the warning. Targets flattened from a
time-major ``(T, N)`` layout (``y.t().reshape(-1)``, a time-major corpus as in PyTorch's word
language model), outputs transposed back before flattening and models whose input is already
time-major are quiet.
"""

from __future__ import annotations

import weakref
from typing import Any, Iterable

import torch

from nndoctor.checks import Check, register
from nndoctor.findings import Finding
from nndoctor.monitor.events import LossCall, ModelInput, ModuleOutput, RunEnd

__all__ = ["MIN_CALLS", "TimeMajorFlattened"]

MIN_CALLS = 2
_LOSSES = frozenset({"cross_entropy", "nll_loss"})


def _first_tensor(out: Any) -> torch.Tensor | None:
    if isinstance(out, torch.Tensor):
        return out
    if isinstance(out, (tuple, list)) and out and isinstance(out[0], torch.Tensor):
        return out[0]
    return None


@register
class TimeMajorFlattened(Check):
    """(T, N, C) scores flattened against (N, T) targets."""

    code = "shape.time-major-logits-flattened"
    needs = ("model_input", "module_output", "loss", "end")
    sampled_only = frozenset({"model_input", "module_output", "loss"})
    module_types = ()  # the model's output only
    root_outputs = True

    def __init__(self, state: Any) -> None:
        super().__init__(state)
        self._root: weakref.ReferenceType[torch.nn.Module] | None = None
        self._input: tuple[int, str, int, int] | None = None  # step, model, N, T
        self._output: tuple[int, int, int, int] | None = None  # step, data_ptr, numel, C
        self._hits: list[dict[str, Any]] = []

    def check(self, event: Any) -> Iterable[Finding]:
        kind = event.kind
        if kind == "model_input":
            self._on_input(event)
        elif kind == "module_output":
            self._on_output(event)
        elif kind == "loss":
            self._on_loss(event)
        elif kind == "end":
            return self._on_end(event)
        return ()

    def _on_input(self, event: ModelInput) -> None:
        self._input = self._output = None
        if not event.grad_enabled:
            return
        x = next((v for v in list(event.args) + list(event.kwargs.values()) if isinstance(v, torch.Tensor)), None)
        if x is None or x.dim() < 2 or x.shape[0] == x.shape[1] or x.shape[1] < 2 or x.shape[0] < 2:
            return
        self._root = weakref.ref(event.model)
        self._input = (event.step, event.name, int(x.shape[0]), int(x.shape[1]))

    def _on_output(self, event: ModuleOutput) -> None:
        if self._input is None or self._root is None or event.module is not self._root():
            return
        step, _, n, t = self._input
        out = _first_tensor(event.output)
        if (step != event.step or out is None or out.dim() != 3 or not out.is_floating_point()
                or tuple(out.shape[:2]) != (t, n) or out.layout != torch.strided):
            return
        self._output = (event.step, out.data_ptr(), out.numel(), int(out.shape[2]))

    def _on_loss(self, event: LossCall) -> None:
        if (self._output is None or self._input is None or event.name not in _LOSSES or not event.grad_enabled
                or event.target is None):
            return
        step, ptr, numel, c = self._output
        _, model, n, t = self._input
        x, y = event.input, event.target
        if (step != event.step or x.dim() != 2 or x.shape[1] != c or x.numel() != numel
                or x.layout != torch.strided or x.data_ptr() != ptr or not x.is_contiguous()
                or y.dim() != 1 or y.numel() != n * t):
            return
        base = y._base
        if base is None or base.dim() != 2 or base.shape[-1] != t or not y.is_contiguous():
            return  # targets not flattened from a batch-major (K, T) matrix: not judged
        self._hits.append({"model": model, "n": n, "t": t, "classes": c, "loss": event.name,
                           "output_shape": (t, n, c), "target_base_shape": tuple(base.shape),
                           "site": event.site, "step": event.step})

    def _on_end(self, event: RunEnd) -> list[Finding]:
        if len(self._hits) < MIN_CALLS:
            return []
        hit = self._hits[0]
        evidence = {**hit, "calls": len(self._hits)}
        return [self.finding(
            f"{hit['model']} takes a batch-major ({hit['n']}, {hit['t']}, ...) input but returns time-major "
            f"({hit['t']}, {hit['n']}, {hit['classes']}) scores, which {hit['loss']} gets flattened as they are, "
            f"against targets flattened from a ({hit['n']}, {hit['t']}) layout (in {len(self._hits)} sampled "
            f"steps): the score of step t of sequence n is paired with the target of another sequence and "
            f"step, so the model learns from labels that do not belong to its inputs",
            evidence, location=hit["model"], step=hit["step"])]
