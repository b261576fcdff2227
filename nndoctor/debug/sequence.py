"""shape: sequence tensors whose batch, time and feature axes get mixed up without an error.

Two silent bugs of sequence (and channel-first) models:

* :class:`RecurrentBatchTimeSwapped`: an ``nn.LSTM`` / ``nn.GRU`` / ``nn.RNN`` built with
  ``batch_first=False`` (the default) is fed batch-major ``(N, T, F)`` tensors. It reads dim 0 as
  time, so it recurs across the samples of the batch and ``out[:, -1]`` is not the last time step.
  Evidence: on the same training step, the recurrent layer's dim 0 equals the batch size that the
  loss sees (the first dim of the target) while its dim 1 does not; a time-major input
  ``(T, N, F)`` with ``(N,)`` targets, and targets shaped ``(T, N, ...)`` like the input, stay quiet.
* :class:`ViewPermutesAxes`: ``x.view(...)`` / ``x.reshape(...)`` whose result has the same sizes
  as its input in a different order (``(N, T, C) -> (N, C, T)``): a view keeps the memory order, so
  the values are scrambled across the axes instead of moved; ``permute`` / ``transpose`` was meant.
  Moving only size-1 axes (``(N, 1, T) -> (N, T, 1)``) is harmless and stays quiet.
"""

from __future__ import annotations

import weakref
from typing import Any, Iterable

import torch

from nndoctor.checks import Check, register
from nndoctor.findings import Finding
from nndoctor.monitor.events import LossCall, ModuleOutput, OpCall
from nndoctor.monitor.observer import user_site

__all__ = ["RecurrentBatchTimeSwapped", "ViewPermutesAxes"]

_RECURRENT = (torch.nn.RNNBase,)


@register
class RecurrentBatchTimeSwapped(Check):
    """A ``batch_first=False`` LSTM/GRU/RNN fed ``(batch, seq, feature)``: it recurs over the batch."""

    code = "shape.rnn-batch-time-swapped"
    needs = ("module_output", "loss")
    module_types = _RECURRENT  # sequence-first layers judged (a subclass judges others)
    needs_module = True

    def __init__(self, state: Any) -> None:
        super().__init__(state)
        self._seen: dict[str, tuple[int, tuple[int, ...], weakref.ReferenceType[torch.nn.Module]]] = {}
        self._reported: set[str] = set()

    def check(self, event: Any) -> Iterable[Finding]:
        if isinstance(event, ModuleOutput):
            module = event.module
            if (isinstance(module, self.module_types) and not getattr(module, "batch_first", True)
                    and event.name not in self._reported and event.inputs
                    and isinstance(event.inputs[0], torch.Tensor) and event.inputs[0].dim() == 3):
                self._seen[event.name] = (event.step, tuple(event.inputs[0].shape), weakref.ref(module))
            return ()
        if not isinstance(event, LossCall) or not self._seen:
            return ()
        target = event.target
        if not isinstance(target, torch.Tensor) or target.dim() < 1:
            return ()
        tshape = tuple(target.shape)
        n = tshape[0]
        out: list[Finding] = []
        for name, (step, shape, _ref) in list(self._seen.items()):
            if step != event.step:
                continue
            d0, d1 = shape[0], shape[1]
            if n < 2 or d0 != n or d1 == n or d1 < 2:
                continue  # dim 1 is the batch the loss sees (time-major, as the layer expects)
            if len(tshape) >= 2 and tshape[1] == d1:
                continue  # targets laid out like the input (time-major per-step targets): ambiguous
            self._reported.add(name)
            del self._seen[name]
            ev = {"module": name, "input_shape": shape, "target_shape": tshape, "batch_size": n,
                  "read_as": {"time": d0, "batch": d1}, "loss": event.name}
            out.append(self.finding(self.message(name, _ref(), shape, n, d1), ev, location=name))
        return out

    def message(self, name: str, module: torch.nn.Module | None, shape: tuple[int, ...], n: int, d1: int) -> str:
        return (f"{name} ({type(module).__name__ if module is not None else 'RNN'}, batch_first=False) "
                f"gets {shape} while the loss sees a batch of {n}: it reads the {n} samples as {n} time "
                f"steps of a batch of {d1}, so it recurs across samples and out[:, -1] is not the last "
                f"time step")


def _sizes(t: torch.Tensor) -> tuple[int, ...]:
    return tuple(int(s) for s in t.shape)


@register
class ViewPermutesAxes(Check):
    """``view``/``reshape`` to the same sizes in another order: values scrambled, not moved."""

    code = "shape.view-scrambles-axes"
    needs = ("op",)
    ops = frozenset({"view", "reshape"})

    def __init__(self, state: Any) -> None:
        super().__init__(state)
        self._reported: set[str] = set()

    def check(self, event: OpCall) -> Iterable[Finding]:
        src = event.args[0] if event.args else None
        res = event.result
        if not (isinstance(src, torch.Tensor) and isinstance(res, torch.Tensor)) or src.dim() < 2:
            return ()
        a, b = _sizes(src), _sizes(res)
        if a == b or len(a) != len(b) or sorted(a) != sorted(b):
            return ()
        big_a, big_b = [s for s in a if s > 1], [s for s in b if s > 1]
        if big_a == big_b or len(set(big_a)) < 2:
            return ()  # only size-1 axes moved
        if src.numel() < 16:
            return ()
        site = user_site()
        key = site or event.module or f"{a}->{b}"
        if key in self._reported:
            return ()
        self._reported.add(key)
        what = "model output" if src.requires_grad else "tensor"
        ev = {"op": event.name, "before": a, "after": b, "site": site or event.module or "?",
              "tensor": "x", "module": event.module}
        return [self.finding(
            f"`{event.name}` turns a {a} {what} into {b} at {ev['site']}: the same sizes in another order, "
            f"so the values are scrambled across the axes instead of moved (permute/transpose was meant)",
            ev, location=ev["site"])]
