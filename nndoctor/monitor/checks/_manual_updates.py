"""The update/weight ratio of a hand-written update: a script with no optimizer object.

Tutorial and ported code often updates its weights by hand after ``loss.backward()``
(``with torch.no_grad(): w -= lr * w.grad``, ``p.data.add_(p.grad, alpha=-lr)``); without an
optimizer every backward is a step (nndoctor/monitor/observer/backward.py) and the lr check
has no optimizer hook to measure the update around. This probe measures it between two
backward calls instead: on a sampled backward it copies the largest weights the loss reaches
(the leaves of its graph: module parameters or raw tensors), keeps their gradient as autograd
computes it (a tensor hook: ``backward()`` and ``torch.autograd.grad`` alike), and at the next backward compares the weights with the copy:

* the update/weight ratio ``|w_next - w| / |w|`` is written to ``nndoctor.update_ratios``, as
  the optimizer probe writes it (weights that started constant are left out, see lr.py);
* where the update is the gradient scaled (cosine of ``-update`` and the gradient >= 0.98:
  plain SGD), its scale ``-<update, grad> / <grad, grad>`` is the rate the script uses, kept in
  ``nndoctor.manual_lr`` (median of the estimates) for the finding's numbers.

A backward with no update after it (a gradient read for a saliency map, accumulation over
several backwards) gives a zero ratio; what else changes the weights between two backwards
(momentum, weight decay written by hand) only lowers the cosine: no rate is estimated then.
"""

from __future__ import annotations

import collections
import math
import statistics
import weakref
from typing import Any

import torch
from torch.utils.weak import WeakIdKeyDictionary

from nndoctor.debug.grad_cut import walk_graph

__all__ = ["HAND_WRITTEN", "MANUAL_LR_KEY", "MAX_NODES", "ManualUpdates", "graph_leaves"]

#: the lr check's name for the "optimizer" of a script with no optimizer object (its location)
HAND_WRITTEN = "the hand-written update (w -= lr * w.grad)"
#: ``state.extra`` key: the estimated rate of a hand-written SGD update (median), and its samples
MANUAL_LR_KEY = "nndoctor.manual_lr"
#: graph nodes walked from the loss to find the weights it reaches (sampled steps only)
MAX_NODES = 4096
SGD_COSINE = 0.98  # an update this aligned with -grad is plain SGD: its scale is the rate
MAX_WEIGHTS = 4
MAX_SNAPSHOT_NUMEL = 8_000_000


def graph_leaves(loss: torch.Tensor, limit: int = MAX_NODES) -> list[torch.Tensor]:
    """The tensors that get a ``.grad`` from ``loss.backward()`` (its graph's AccumulateGrad nodes),
    found within ``limit`` nodes (:func:`nndoctor.debug.grad_cut.walk_graph`)."""
    if loss.grad_fn is None:
        return []
    leaves = (getattr(node, "variable", None) for node in walk_graph(loss.grad_fn, limit))
    return [var for var in leaves if isinstance(var, torch.Tensor)]


class _Held:
    __slots__ = ("ref", "before", "grad", "name", "handle")

    def __init__(self, p: torch.Tensor, name: str) -> None:
        self.ref = weakref.ref(p)
        self.before = p.detach().clone()
        self.grad: torch.Tensor | None = None
        self.name = name
        self.handle: Any = None


class ManualUpdates:
    """Measures the updates of a script without an optimizer between consecutive backwards."""

    def __init__(self, state: Any) -> None:
        self.state = state
        self._held: list[_Held] = []
        self._held_step = 0
        self._constant: WeakIdKeyDictionary = WeakIdKeyDictionary()  # leaf -> all values equal when first met
        self._lrs: collections.deque[float] = collections.deque(maxlen=64)

    def on_backward(self, loss: torch.Tensor, step: int, sampled: bool, index: int = 1) -> None:
        """``loss.backward()`` is about to run (the weights are those of the step just ended);
        ``index``: the backward calls before it. Nothing is copied at the run's first backward: an
        optimizer is only known from its first step, which comes after it (the weights of a run with
        an optimizer are never copied twice)."""
        if self._held:
            self._measure()
        if sampled and index >= 1 and isinstance(loss, torch.Tensor) and loss.requires_grad:
            self._snapshot(loss, step)

    def close(self) -> None:
        """The run ended: hooks off, copies dropped."""
        for held in self._held:
            if held.handle is not None:
                held.handle.remove()
        self._held = []

    # ------------------------------------------------------------------ internals
    def _snapshot(self, loss: torch.Tensor, step: int) -> None:
        leaves = [p for p in graph_leaves(loss) if p.is_floating_point() and p.numel() and not p.is_sparse]
        for p in leaves:
            if p not in self._constant:
                flat = p.detach().reshape(-1)
                self._constant[p] = bool((flat == flat[0]).all()) if flat.numel() > 1 else False
        # weights (not biases / norm scales), largest first; not those that started constant
        leaves.sort(key=lambda t: (t.dim() < 2, -t.numel()))
        budget = MAX_SNAPSHOT_NUMEL
        for p in leaves:
            if len(self._held) >= MAX_WEIGHTS:
                break
            if self._constant.get(p) or p.numel() > budget:
                continue
            budget -= p.numel()
            held = _Held(p, self.state.param_name(p))
            def keep(grad: torch.Tensor, held: _Held = held) -> None:
                if held.grad is None:  # (the step's first gradient: backward() or torch.autograd.grad)
                    held.grad = grad.detach().clone()

            try:
                held.handle = p.register_hook(keep)
            except RuntimeError:  # (a tensor that takes no hook)
                held.handle = None
            # (removed with the sampled step's other grad hooks, whatever happens to this check)
            handles = getattr(getattr(self.state, "observer", None), "_heavy_handles", None)
            if held.handle is not None and isinstance(handles, list):
                handles.append(held.handle)
            self._held.append(held)
        self._held_step = step

    def _measure(self) -> None:
        held_all, self._held = self._held, []
        parts: list[torch.Tensor] = []  # per weight: |update|, |weight|, -<update, grad>, |grad|
        names: list[str] = []
        with_grad: list[bool] = []
        zero = torch.zeros(())
        for held in held_all:
            if held.handle is not None:
                held.handle.remove()
            p = held.ref()
            if p is None or p.shape != held.before.shape:
                continue
            delta = (p.detach() - held.before).float()
            g = held.grad.float() if held.grad is not None and held.grad.shape == delta.shape else None
            parts += [torch.linalg.vector_norm(delta), torch.linalg.vector_norm(held.before.float()),
                      -(delta * g).sum() if g is not None else zero.to(delta.device),
                      torch.linalg.vector_norm(g) if g is not None else zero.to(delta.device)]
            names.append(held.name)
            with_grad.append(g is not None)
        if not names:
            return
        values = torch.stack(parts).cpu().tolist()  # the one host sync
        rows4 = [values[i:i + 4] for i in range(0, len(values), 4)]
        # (weights already overflowed to Inf/NaN give no ratio: the overflow, not the rate, made it)
        keep = [i for i, (d, w, _, _) in enumerate(rows4) if math.isfinite(d) and math.isfinite(w)]
        if not keep:
            return
        rows4, names, with_grad = [rows4[i] for i in keep], [names[i] for i in keep], [with_grad[i] for i in keep]
        ratios = [d / w if w > 0 else (0.0 if d == 0 else float("inf")) for d, w, _, _ in rows4]
        order = sorted(range(len(ratios)), key=lambda i: ratios[i])
        rows = self.state.extra.setdefault("nndoctor.update_ratios", collections.deque(maxlen=256))
        rows.append({"step": self._held_step, "median": ratios[order[len(order) // 2]],
                     "max": ratios[order[-1]], "param": names[order[-1]]})
        for (d, _, dot, gn), has in zip(rows4, with_grad):
            if has and gn > 0 and d > 0 and dot >= SGD_COSINE * d * gn:
                self._lrs.append(dot / (gn * gn))  # plain SGD: the update is -lr * grad
        if self._lrs:
            self.state.extra[MANUAL_LR_KEY] = {"lr": statistics.median(self._lrs), "samples": len(self._lrs)}
