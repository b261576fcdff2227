"""Runtime remedy for ``optimizer.recreated-in-loop``: an optimizer built anew over the same parameters keeps
the state of the one before it.

The check (:mod:`nndoctor.monitor.checks.recreated`) saw three or more optimizers built over the same
parameter tensors during training: each starts without the moment estimates or momentum buffers of the
one before. In the re-run, an optimizer of the same class and the same settings (every group's
hyperparameters equal) built over exactly the parameter tensors of an earlier one shares that one's
state (the per-parameter state is keyed by the tensors themselves): it goes on as the single optimizer
built before the loop would. An optimizer over other tensors (a GAN's second model, a new model per
fold) or with other settings (a second phase at another rate) starts fresh, as the script wrote it.
"""

from __future__ import annotations

import contextlib
import weakref
from typing import Any

import torch

from nndoctor.fix.remedies import Remedy, _on_new_optimizers

__all__ = ["KEEP_OPTIMIZER_REMEDIES", "settings_of"]

Finding = dict[str, Any]


def settings_of(opt: torch.optim.Optimizer) -> tuple[Any, ...]:
    """The optimizer's class, its parameter tensors (by identity, in order) and each group's settings."""
    groups = tuple((tuple(id(p) for p in g["params"]),
                    tuple(sorted((k, repr(v)) for k, v in g.items() if k not in ("params", "initial_lr"))))
                   for g in opt.param_groups)
    return type(opt), groups


def _install_keep_state(f: Finding, stack: contextlib.ExitStack) -> None:
    earlier: dict[tuple[Any, ...], weakref.ReferenceType[torch.optim.Optimizer]] = {}

    def change(opt: torch.optim.Optimizer) -> None:
        key = settings_of(opt)
        ref = earlier.get(key)
        before = ref() if ref is not None else None
        if before is not None and before is not opt:
            opt.state = before.state  # (keyed by the same tensors: the moments and buffers go on)
        earlier[key] = weakref.ref(opt)

    _on_new_optimizers(stack, change)


KEEP_OPTIMIZER_REMEDIES: tuple[Remedy, ...] = (
    Remedy("keep-optimizer-state", ("optimizer.recreated-in-loop",),
           lambda f: f"each new {(f.get('evidence') or {}).get('optimizer_class', 'optimizer')} over the same "
                     "parameters keeps the state of the one before (as one optimizer built before the loop)",
           lambda f: f"Create {(f.get('evidence') or {}).get('optimizer') or f.get('location') or 'the optimizer'} "
                     "once, before the training loop, not inside it.",
           _install_keep_state),
)
