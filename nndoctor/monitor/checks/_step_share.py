"""Weight copies and update norms of one sampled optimizer step, shared by the checks that read them.

Not a check module (the leading underscore keeps the autoloader away). The learning-rate probe
(update/weight ratios) and the re-initialisation check (weights replaced or brought back between
samples) both copy the largest weight matrices before a sampled ``step()`` and measure the update
after it. On a 256 x 256 matrix a copy or an update norm costs ~30-50 us of memory traffic on CPU;
the first check to ask computes it, the other reads the same tensor (the same arithmetic: the
results are bitwise the ones each check computed on its own). A copy is dropped here once its
update norm is read (a check that keeps it, keeps its own reference).
"""

from __future__ import annotations

import weakref
from typing import Any

import torch

from nndoctor.monitor.tensors import local

__all__ = ["StepShare", "step_share"]

KEY = "nndoctor.step_share"


class _Step:
    def __init__(self, step: int) -> None:
        self.step = step
        self.copies: dict[int, tuple[weakref.ReferenceType[torch.Tensor], torch.Tensor]] = {}
        self.updates: dict[int, torch.Tensor] = {}


class StepShare:
    """Per optimizer, its current sampled step's copies (taken before ``step()``) and update norms."""

    def __init__(self) -> None:
        self._steps: dict[int, _Step] = {}

    def _at(self, step: int, optimizer: torch.optim.Optimizer) -> _Step:
        cur = self._steps.get(id(optimizer))
        if cur is None or cur.step != step:
            if len(self._steps) >= 16:  # (optimizers come and go: keep a few)
                self._steps.clear()
            cur = self._steps[id(optimizer)] = _Step(step)
        return cur

    def copy_before(self, p: torch.Tensor, step: int, optimizer: torch.optim.Optimizer) -> torch.Tensor:
        """``local(p).detach().clone()``, taken once at this step's pre-step event."""
        cur = self._at(step, optimizer)
        held = cur.copies.get(id(p))
        if held is None or held[0]() is not p:
            held = cur.copies[id(p)] = (weakref.ref(p), local(p).detach().clone())
        return held[1]

    def update_norm(self, p: torch.Tensor, step: int, optimizer: torch.optim.Optimizer) -> torch.Tensor | None:
        """``vector_norm((local(p) - copy).float())`` after this step's update, a 0-d tensor on
        ``p``'s device; None without a copy of ``p`` from this step or when its shape changed."""
        cur = self._at(step, optimizer)
        norm = cur.updates.get(id(p))
        if norm is None:
            held = cur.copies.pop(id(p), None)
            now = local(p).detach()
            if held is None or held[0]() is not p or now.shape != held[1].shape:
                return None
            norm = cur.updates[id(p)] = torch.linalg.vector_norm((now - held[1]).float())
        return norm


def step_share(state: Any) -> StepShare:
    """The run's :class:`StepShare` (kept in ``state.extra``)."""
    share = state.extra.get(KEY)
    if share is None:
        share = state.extra[KEY] = StepShare()
    return share
