"""Update-to-weight ratios of a hand-written update (no optimizer object), for the lr check.

Not a check module (the leading underscore keeps the autoloader away). Tutorials and classic
examples train without ``torch.optim``::

    loss.backward()
    with torch.no_grad():
        for p in model.parameters():
            p -= lr * p.grad            # or p.data.add_(p.grad, alpha=-lr), w1 -= lr * w1.grad
    model.zero_grad()

There is no ``step()`` to copy the weights around, so the optimizer probe of :mod:`.lr` never
measures anything and a learning rate 100x too high was only seen as a loss that oscillates or
explodes, blamed on the data. Without an optimizer every ``backward()`` is a step (the observer
delivers them all): at a sampled backward the largest leaf tensors of the loss's graph (the
weights the update changes) are copied; at the next backward the copies are compared with the
weights, which the hand-written update has changed in between. The ratios go where the optimizer
probe puts its own (``state.extra["nndoctor.update_ratios"]``), read by the lr and loss-curve checks.

Leaves that hold one value when first met (zeros, ``fill_``) are left out, as in the optimizer
probe (a ratio against a zero-initialised table means nothing), and so are leaves that never
changed between two backwards (inputs, frozen weights: no update, no ratio). Once an optimizer
steps, this probe is idle for good.
"""

from __future__ import annotations

import collections
import weakref
from typing import Any

import torch

from nndoctor.debug.grad_cut import walk_graph
from nndoctor.monitor.tensors import local

__all__ = ["MANUAL_KEY", "ManualUpdateProbe"]

#: ``state.extra`` key set once a hand-written update was measured (the lr check then judges a run
#: without optimizer)
MANUAL_KEY = "nndoctor.manual_update_ratios"
MAX_LEAVES = 4
MAX_SNAPSHOT_NUMEL = 8_000_000
_GRAPH_NODES = 2000
_LOOKS = 4  # backwards whose graph is searched for leaves


class ManualUpdateProbe:
    """Copies a few large leaves of the loss at a sampled backward, measures them at the next one."""

    def __init__(self, state: Any) -> None:
        self.state = state
        self._leaves: list[tuple[weakref.ReferenceType[torch.Tensor], str]] = []
        self._constant: set[int] = set()
        self._looked = 0
        self._snap: list[tuple[weakref.ReferenceType[torch.Tensor], torch.Tensor, str]] = []
        self._snap_index = -2

    def on_backward(self, loss: torch.Tensor, step: int, index: int, sampled: bool) -> None:
        with torch.no_grad():
            if self._snap and index == self._snap_index + 1:
                self._measure(step)
            self._snap = []
            if self._looked < _LOOKS and len(self._leaves) < MAX_LEAVES:
                self._looked += 1
                self._find_leaves(loss)
            if sampled and self._leaves:
                self._take(index)

    def _find_leaves(self, loss: torch.Tensor) -> None:
        if loss.grad_fn is None:
            return
        known = {id(r()) for r, _ in self._leaves}
        found: list[torch.Tensor] = []
        for node in walk_graph(loss.grad_fn, _GRAPH_NODES):
            var = getattr(node, "variable", None)  # an AccumulateGrad node: a leaf that gets a .grad
            if (isinstance(var, torch.Tensor) and id(var) not in known and var.is_floating_point()
                    and not var.is_sparse and local(var).numel() and var.dim() >= 2):
                found.append(var)
                known.add(id(var))
        for var in found:
            t = local(var).detach()
            if float(t.amax() - t.amin()) == 0.0:
                self._constant.add(id(var))  # started constant: a ratio against it means nothing
        found = [v for v in found if id(v) not in self._constant]
        found.sort(key=lambda t: -local(t).numel())  # weight matrices, largest first
        for var in found[: MAX_LEAVES - len(self._leaves)]:
            name = self.state.param_names.get(id(var)) or f"tensor{tuple(var.shape)}"
            self._leaves.append((weakref.ref(var), name))

    def _take(self, index: int) -> None:
        budget = MAX_SNAPSHOT_NUMEL
        for ref, name in self._leaves:
            p = ref()
            if p is None:
                continue
            lp = local(p)
            if lp.numel() <= budget:
                budget -= lp.numel()
                self._snap.append((ref, lp.detach().clone(), name))
        self._snap_index = index

    def _measure(self, step: int) -> None:
        diffs, norms, names = [], [], []
        for ref, before, name in self._snap:
            p = ref()
            if p is None or local(p).shape != before.shape:
                continue
            diffs.append(torch.linalg.vector_norm((local(p).detach() - before).float()))
            norms.append(torch.linalg.vector_norm(before.float()))
            names.append(name)
        if not diffs:
            return
        values = torch.stack(diffs + norms).cpu().tolist()
        d, w = values[: len(diffs)], values[len(diffs):]
        moved = [(di / wi, n) for di, wi, n in zip(d, w, names) if wi > 0 and di > 0]
        if not moved:
            return  # nothing changed between the two backwards: no hand-written update to measure
        moved.sort()
        rows = self.state.extra.setdefault("nndoctor.update_ratios", collections.deque(maxlen=256))
        rows.append({"step": max(step - 1, 1), "median": moved[len(moved) // 2][0], "max": moved[-1][0],
                     "param": moved[-1][1]})
        self.state.extra[MANUAL_KEY] = self.state.extra.get(MANUAL_KEY, 0) + 1
