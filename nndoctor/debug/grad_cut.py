"""Non-differentiable ops in the training forward, and the parameters upstream of them.

``torch.round``/``floor``/``ceil``/``trunc``/``sign`` have a zero derivative almost everywhere:
the graph stays connected but every gradient through them is exactly 0. ``argmax``/``argmin`` and
comparisons (``h > 0``) return integer or bool tensors that carry no graph at all. Either way the
parameters that produced their input stop learning, unless another path (a straight-through
estimator ``x + (round(x) - x).detach()``, a residual, the loss itself) carries a gradient to them.

:class:`CutLog` keeps a bounded record of such ops seen by the function mode in training forwards
(op, module, file:line) with the ids of the parameters upstream of each (a walk of the autograd
graph from the op's input, bounded in nodes). The grad-flow check matches those parameters
against the ones whose gradient stays None or exactly zero while the rest of the model learns.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

import torch

__all__ = ["CUT_OPS", "ZERO_DERIVATIVE_OPS", "Cut", "CutLog", "leaf_ids", "upstream_params", "walk_graph"]

#: a zero derivative almost everywhere (the graph stays, the gradient is 0)
ZERO_DERIVATIVE_OPS = frozenset({"round", "floor", "ceil", "trunc", "fix", "sign", "sgn", "heaviside",
                                 "floor_divide", "round_", "floor_", "ceil_", "sign_", "trunc_"})
#: integer / bool results: no graph at all after them
_INDEX_OPS = frozenset({"argmax", "argmin"})
_COMPARE = frozenset({"gt", "lt", "ge", "le", "eq", "ne", "greater", "less", "greater_equal",
                      "less_equal"})
CUT_OPS = ZERO_DERIVATIVE_OPS | _INDEX_OPS | _COMPARE

_MAX_NODES = 4000  # autograd nodes walked per op site
_MAX_SITES = 12


@dataclass
class Cut:
    """One site (file:line) where a non-differentiable op ran on a tensor with a graph."""

    op: str
    site: str
    module: str
    shape: tuple[int, ...]
    step: int
    params: set[int] = field(default_factory=set)  # ids of the parameters upstream of its input
    #: its result was seen in the graph of a loss that backward() ran on (zero-derivative ops
    #: only: a rounded accuracy metric computed with gradients on is no cut)
    on_loss_path: bool = False

    def label(self) -> str:
        if self.op in _COMPARE:
            return f"a comparison ({self.op}) cast to a mask"
        return f"torch.{self.op}" if self.op in ZERO_DERIVATIVE_OPS | _INDEX_OPS else self.op


def walk_graph(root: Any, limit: int, skip: Any = None) -> Iterator[Any]:
    """The autograd nodes reachable from ``root``, breadth first (the nearest first), each once, at
    most ``limit`` of them; the node ``skip`` (and what is reachable only through it) is left out."""
    seen = {root}
    todo = [root]
    i = 0
    while i < len(todo) and i < limit:
        node = todo[i]
        i += 1
        yield node
        for nxt, _ in getattr(node, "next_functions", ()):
            if nxt is not None and nxt is not skip and nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)


def leaf_ids(root: Any, limit: int = _MAX_NODES, skip: Any = None) -> set[int]:
    """Ids of the leaf tensors (parameters) reached from the autograd node ``root`` (not through
    ``skip``), at most ``limit`` nodes walked (the nearest ones first)."""
    out: set[int] = set()
    for node in walk_graph(root, limit, skip):
        var = getattr(node, "variable", None)  # an AccumulateGrad node: a leaf
        if isinstance(var, torch.Tensor):
            out.add(id(var))
    return out


def upstream_params(tensor: torch.Tensor, limit: int = _MAX_NODES) -> set[int]:
    """Ids of the leaf tensors (parameters) the autograd graph of ``tensor`` reaches, at most
    ``limit`` nodes walked (the nearest ones first)."""
    root = tensor.grad_fn
    if root is None:
        return {id(tensor)} if tensor.requires_grad else set()
    return leaf_ids(root, limit)


class CutLog:
    """Bounded record of the non-differentiable ops of the training forwards, one per site."""

    def __init__(self) -> None:
        self.sites: dict[tuple[str, str], Cut] = {}
        #: id(grad_fn of a zero-derivative op's result) -> its site, this step, until backward
        self.pending: dict[int, tuple[str, str]] = {}

    def record(self, name: str, args: tuple[Any, ...], result: Any, module: str, site: Callable[[], str],
               step: int) -> None:
        src = args[0] if args else None
        if name in _COMPARE and not isinstance(src, torch.Tensor):
            src = args[1] if len(args) > 1 else None
        if not (isinstance(src, torch.Tensor) and src.requires_grad and src.is_floating_point()):
            return
        zero = name in ZERO_DERIVATIVE_OPS
        if not zero and len(self.sites) >= _MAX_SITES:
            return
        where = site()
        key = (name, where)
        cut = self.sites.get(key)
        if cut is None:
            if len(self.sites) >= _MAX_SITES:
                return
            cut = self.sites[key] = Cut(op=name, site=where, module=module, shape=tuple(src.shape), step=step,
                                        params=upstream_params(src))
        node = getattr(result, "grad_fn", None)
        if zero and not cut.on_loss_path and node is not None and len(self.pending) < 64:
            self.pending[id(node)] = key

    def confirm(self, loss: Any, limit: int = 5 * _MAX_NODES) -> None:
        """Mark the pending zero-derivative ops whose result is in the graph of ``loss``."""
        pending, self.pending = self.pending, {}
        root = getattr(loss, "grad_fn", None)
        if not pending or root is None:
            return
        for node in walk_graph(root, limit):
            key = pending.get(id(node))
            if key is not None and key in self.sites:
                self.sites[key].on_loss_path = True

    def explaining(self, pids: set[int]) -> list[Cut]:
        """The recorded ops upstream of which some of ``pids`` lie, most parameters first."""
        hits = [c for c in self.sites.values() if c.params & pids]
        return sorted(hits, key=lambda c: -len(c.params & pids))
