"""zero-grad: a hand-written update (no optimizer) whose gradients are never cleared.

Training "from scratch" updates the weights by hand after ``loss.backward()``::

    with torch.no_grad():
        w -= lr * w.grad          # the gradient is never cleared: w.grad.zero_() is missing

``backward()`` adds to ``.grad``, so without ``w.grad.zero_()`` (or ``w.grad = None``,
``model.zero_grad()``) each update applies the sum of every gradient so far: the steps grow and
point in a stale direction, and the loss oscillates or diverges. The optimizer-based check
(:mod:`nndoctor.debug.zero_grad`) judges the windows between ``optimizer.step()`` calls; a script
without an optimizer has none, so this check builds them from the weights themselves.

Detection, while no optimizer has stepped (without one every backward is observed): at each
``backward()`` (before it adds its gradient) the first entries of up to :data:`MAX_LEAVES` leaf
tensors of the loss's graph are read, with whether their ``.grad`` is None or zero. A leaf whose
values changed since the previous backward was updated in between: that closes its window (the
backwards since its previous update). A window in which no backward found the leaf's gradient
cleared carried it into the update. Gradient accumulation (k backwards, one update, then clearing)
clears inside each window and stays quiet, and so does a leaf that is never updated (a frozen
weight, an input whose gradient is read for a saliency map). Reported when at least
:data:`MIN_WINDOWS` windows carried, in at least half of the windows judged.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass, field
from typing import Any, Iterable

import torch

from nndoctor.checks import Check, register
from nndoctor.debug.grad_cut import walk_graph
from nndoctor.findings import Finding
from nndoctor.monitor.events import BackwardCall
from nndoctor.monitor.tensors import local

__all__ = ["ManualUpdateGradsNotCleared"]

#: leaf tensors of the loss's graph followed (the nearest to the loss first)
MAX_LEAVES = 16
#: entries of each leaf (and of its gradient) read per backward
HEAD = 64
#: carried windows needed before reporting
MIN_WINDOWS = 3
_GRAPH_NODES = 2000


@dataclass
class _Leaf:
    ref: weakref.ReferenceType[torch.Tensor]
    name: str
    before: torch.Tensor  # the first entries at the previous backward
    cleared: bool = True  # a backward of the open window found .grad None or zero (the first window: unknown)
    judged: int = 0
    carried: int = 0
    carried_steps: list[int] = field(default_factory=list)
    norms: list[tuple[int, float]] = field(default_factory=list)


@register
class ManualUpdateGradsNotCleared(Check):
    """Weights updated by hand after backward() while their .grad keeps every past gradient."""

    code = "zero-grad.manual-update-not-cleared"
    needs = ("backward",)
    # without an optimizer every backward is a step and reaches the checks; with one this check is idle,
    # and wanting unsampled backwards would keep every run off the observer's fast backward path
    sampled_only = frozenset({"backward"})

    def __init__(self, state: Any) -> None:
        super().__init__(state)
        self._leaves: dict[int, _Leaf] = {}
        self._looked = 0  # backwards whose graph was searched for leaves
        self._reported = False

    def check(self, event: BackwardCall) -> Iterable[Finding]:
        if self._reported or self.state.optimizers:
            self.retire()  # (an optimizer steps, for good: this check of hand-written updates is idle)
            return ()
        if not isinstance(event.tensor, torch.Tensor):
            return ()
        with torch.no_grad():
            if len(self._leaves) < MAX_LEAVES and self._looked < 4:
                self._looked += 1
                self._find_leaves(event.tensor)
            return self._observe(event)

    def _find_leaves(self, loss: torch.Tensor) -> None:
        if loss.grad_fn is None:
            return
        for node in walk_graph(loss.grad_fn, _GRAPH_NODES):
            var = getattr(node, "variable", None)  # an AccumulateGrad node: a leaf that gets a .grad
            if (not isinstance(var, torch.Tensor) or id(var) in self._leaves or not var.is_floating_point()
                    or var.is_sparse or not local(var).numel()):
                continue
            name = self.state.param_names.get(id(var)) or f"tensor{tuple(var.shape)}"
            self._leaves[id(var)] = _Leaf(ref=weakref.ref(var), name=name, before=_head(var))
            if len(self._leaves) >= MAX_LEAVES:
                break

    def _observe(self, event: BackwardCall) -> list[Finding]:
        for key, leaf in list(self._leaves.items()):
            p = leaf.ref()
            if p is None:
                del self._leaves[key]
                continue
            now = _head(p)
            clear = _clear(p.grad)
            if now.shape == leaf.before.shape and not torch.equal(now, leaf.before):
                # updated since the previous backward: judge the window that update closed
                if not leaf.cleared and p.grad is not None:
                    leaf.carried += 1
                    leaf.carried_steps.append(event.step)
                    leaf.norms.append((event.step, float(p.grad.detach().float().norm())))
                leaf.judged += 1
                leaf.cleared = clear
            else:
                leaf.cleared = leaf.cleared or clear
            leaf.before = now
        bad = [lf for lf in self._leaves.values() if lf.carried >= MIN_WINDOWS and 2 * lf.carried >= lf.judged]
        if not bad:
            return []
        self._reported = True
        return [self._report(bad)]

    def _report(self, bad: list[_Leaf]) -> Finding:
        first = max(bad, key=lambda lf: lf.carried)
        names = [lf.name for lf in bad]
        listing = ", ".join(names[:4]) + (f" and {len(names) - 4} more" if len(names) > 4 else "")
        growth = ""
        if len(first.norms) >= 2:
            (s0, n0), (s1, n1) = first.norms[0], first.norms[-1]
            growth = f"; {first.name}'s carried gradient norm went {n0:.3g} (step {s0}) -> {n1:.3g} (step {s1})"
        steps = ", ".join(map(str, first.carried_steps[:6]))
        msg = (f"the weights are updated by hand after backward() but their gradients are never cleared: in "
               f"{first.carried} of {first.judged} observed updates (steps {steps}) {listing} still held the "
               f"previous gradients when the next backward() added to them, so each update applies the sum of "
               f"all past gradients{growth}")
        ev = {"params": listing, "param_names": names[:8], "updates_observed": first.judged,
              "updates_carried": first.carried, "grad_norms": first.norms[-6:],
              "first_param": first.name}
        return self.finding(msg, ev, location=first.name, step=first.carried_steps[0])


def _head(t: torch.Tensor) -> torch.Tensor:
    return local(t).detach().reshape(-1)[:HEAD].clone()


def _clear(grad: torch.Tensor | None) -> bool:
    """The gradient is None or zero (its first entries: a cleared gradient is zero everywhere)."""
    if grad is None:
        return True
    g = local(grad)
    if g.is_sparse or not g.numel():
        return True
    return not bool(g.detach().reshape(-1)[:4 * HEAD].any())
