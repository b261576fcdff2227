"""Every optimizer the re-run creates, changed as it is created (before any scheduler reads its lr).

Shared by the remedies that set an optimizer's lr, weight decay or betas, that collect the optimizers
(early stopping) and by the hand-written-update remedy (:mod:`nndoctor.fix.hand_lr`), which only needs
to know whether an optimizer exists.
"""

from __future__ import annotations

import contextlib
import functools
from typing import Any, Callable

import torch

__all__ = ["on_new_optimizers"]


def on_new_optimizers(stack: contextlib.ExitStack, change: Callable[[torch.optim.Optimizer], None]) -> None:
    """Apply ``change`` to every optimizer as it is created (before any scheduler reads its lr)."""
    original = torch.optim.Optimizer.__init__

    @functools.wraps(original)
    def init(self: torch.optim.Optimizer, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        change(self)

    torch.optim.Optimizer.__init__ = init  # type: ignore[method-assign]
    stack.callback(setattr, torch.optim.Optimizer, "__init__", original)
