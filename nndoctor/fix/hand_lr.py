"""The learning-rate remedy of a script that updates its weights by hand (no optimizer object).

``w -= lr * w.grad`` written in the script cannot be reached through an optimizer's param
groups; for that update, scaling the gradient is scaling the rate. In the re-run every leaf a
loss reaches gets a gradient hook multiplying its gradient by ``new / measured`` (the rate read
off the diagnosis run's updates, :mod:`nndoctor.monitor.checks._manual_updates`), from the
first backward on, for as long as no optimizer object exists (an optimizer's updates are not
the script's hand-written ones: its rate is changed through its param groups instead).
"""

from __future__ import annotations

import contextlib
import functools
import weakref
from typing import Any

import torch

from nndoctor.fix.new_optimizers import on_new_optimizers
from nndoctor.monitor.checks._manual_updates import HAND_WRITTEN, graph_leaves

__all__ = ["HAND_WRITTEN", "by_hand", "install_gradient_scale"]



def by_hand(f: dict[str, Any]) -> bool:
    """Whether the finding is about the rate of a hand-written update."""
    return f.get("evidence", {}).get("optimizer") == HAND_WRITTEN or f.get("location") == HAND_WRITTEN


def install_gradient_scale(factor: float, stack: contextlib.ExitStack) -> None:
    """Every gradient of a leaf the losses reach multiplied by ``factor`` while no optimizer exists."""
    if not factor > 0:
        raise ValueError(f"a gradient scale must be positive, got {factor!r}")
    hooked: dict[int, weakref.ReferenceType[torch.Tensor]] = {}
    optimizers: list[bool] = [False]

    def scale(grad: torch.Tensor) -> torch.Tensor:
        return grad * factor if not optimizers[0] else grad

    original = torch.autograd.backward

    @functools.wraps(original)
    def backward(tensors: Any, *args: Any, **kwargs: Any) -> Any:
        if not optimizers[0]:
            loss = tensors if isinstance(tensors, torch.Tensor) else (
                tensors[0] if isinstance(tensors, (list, tuple)) and tensors else None)
            if isinstance(loss, torch.Tensor):
                for leaf in graph_leaves(loss):
                    ref = hooked.get(id(leaf))
                    if ref is None or ref() is not leaf:
                        stack.callback(leaf.register_hook(scale).remove)
                        hooked[id(leaf)] = weakref.ref(leaf)
        return original(tensors, *args, **kwargs)

    on_new_optimizers(stack, lambda _opt: optimizers.__setitem__(0, True))
    torch.autograd.backward = backward  # type: ignore[assignment]
    stack.callback(setattr, torch.autograd, "backward", original)
