"""Runtime remedy for a model that overfits: training stops at the step of the best validation
loss (early stopping). Same contract as :mod:`nndoctor.fix.remedies` (``install(finding, stack)``
changes the re-run through hooks; the stack undoes it).

The re-run repeats the diagnosis run (same seed, same arguments) up to that step; from then on
every optimizer step finds no gradient (they are cleared just before it) and leaves the weights
as they were, so the script's own evaluation at the end sees the weights of the best validation
step. A finding without a measured best step (one evaluation only) has no runtime remedy.
"""

from __future__ import annotations

import contextlib
from typing import Any

import torch

from nndoctor.fix.remedies import Remedy, _step_pre

__all__ = ["FIT_REMEDIES", "best_step"]

Finding = dict[str, Any]


def best_step(f: Finding) -> int:
    """The step of the best validation loss the finding measured (0: none)."""
    value = (f.get("evidence") or {}).get("best_step")
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def _install_early_stop(f: Finding, stack: contextlib.ExitStack) -> None:
    stop = best_step(f)
    if not stop:
        raise ValueError("the finding names no best validation step")
    steps: dict[int, int] = {}

    def pre(optimizer: torch.optim.Optimizer, args: Any, kwargs: Any) -> None:
        done = steps.get(id(optimizer), 0)
        steps[id(optimizer)] = done + 1
        if done >= stop:                    # past the best step: this step changes nothing
            for group in optimizer.param_groups:
                for p in group["params"]:
                    p.grad = None

    _step_pre(stack, pre)


FIT_REMEDIES: tuple[Remedy, ...] = (
    Remedy("early-stopping", ("fit.overfitting",),
           lambda f: f"training stopped at step {best_step(f)}, the best validation loss (later optimizer steps "
                     "leave the weights unchanged)",
           lambda f: f"Stop training at the best validation loss (step {best_step(f)}): keep the checkpoint with the "
                     "lowest validation loss (early stopping), or add weight decay / dropout / more data.",
           _install_early_stop, applies=lambda f: best_step(f) > 0),
)
