"""Layers written without a module: ``act(x @ w + b)``, ``F.linear(x, w)``, ``F.conv2d(x, w)``.

Not a check module (the leading underscore keeps the autoloader away). Networks whose weights are
plain tensors or ``nn.Parameter`` attributes used in a hand-written forward (makemore-style
``torch.tanh(emb @ W1 + b1)``, ``torch.func`` weights, a list of weight tensors) have no layer
module whose output an activation could be traced to. Two autograd-graph reads stand in for it:

* :func:`weight_of`: the weight matrix behind a pre-activation, found through the few
  pass-through nodes a bias, a scale or a reshape adds (never through another activation, a norm
  or a second weighted op);
* :class:`HiddenTracker`: which recorded activation outputs feed a later weighted op on the way
  from the loss (hidden units), as opposed to the network's output (a confident output sigmoid,
  a ReLU on a regression output: judged elsewhere).

Everything is read on sampled steps, under ``torch.no_grad()``, with bounded walks.
"""

from __future__ import annotations

from typing import Any, Hashable

import torch

__all__ = ["HiddenTracker", "weight_of"]

#: autograd nodes of an op that multiplies by a weight
WEIGHTED = ("MmBackward", "AddmmBackward", "MvBackward", "AddmvBackward", "BmmBackward", "BaddbmmBackward",
            "ConvolutionBackward", "LinearBackward")
#: nodes a bias, a scale or a reshape adds between a weighted op and its activation
_PASS = ("AddBackward", "SubBackward", "MulBackward", "DivBackward", "ViewBackward", "UnsafeViewBackward",
         "ReshapeAliasBackward", "SqueezeBackward", "UnsqueezeBackward", "CloneBackward", "ToCopyBackward")
#: nodes between a weighted op and the weight leaf (``x @ w.t()``, a broadcast batch matmul)
_WEIGHT_PATH = ("TBackward", "TransposeBackward", "PermuteBackward", "ExpandBackward", "ViewBackward",
                "UnsafeViewBackward", "ReshapeAliasBackward")
_DEPTH = 4  # pass-through nodes searched above a pre-activation
_MAX_VISITS = 20_000  # nodes one walk from the loss may visit


def _name(node: Any) -> str:
    return type(node).__name__


def _leaf(node: Any, hops: int = 3) -> torch.Tensor | None:
    """The trainable matrix at ``node``'s AccumulateGrad, through at most ``hops`` reshapes."""
    for _ in range(hops + 1):
        if node is None:
            return None
        var = getattr(node, "variable", None)
        if isinstance(var, torch.Tensor):
            return var if var.requires_grad and var.dim() >= 2 and var.is_floating_point() else None
        if not _name(node).startswith(_WEIGHT_PATH) or len(node.next_functions) != 1:
            return None
        node = node.next_functions[0][0]
    return None


def weight_of(pre: torch.Tensor | None) -> torch.Tensor | None:
    """The trainable weight matrix of the weighted op that produced ``pre`` (through pass-through
    nodes only), or None when ``pre`` is not the output of a layer."""
    if pre is None or pre.grad_fn is None:
        return None
    frontier = [pre.grad_fn]
    for _ in range(_DEPTH):
        nxt = []
        for node in frontier:
            if node is None:
                continue
            name = _name(node)
            if name.startswith(WEIGHTED):
                for child, _ in node.next_functions:
                    w = _leaf(child)
                    if w is not None:
                        return w
            elif name.startswith(_PASS):
                nxt.extend(child for child, _ in node.next_functions)
        frontier = nxt
    return None


class HiddenTracker:
    """Activation outputs recorded in a step, and which of them a later weighted op consumed."""

    def __init__(self, capacity: int = 512) -> None:
        self._nodes: dict[int, tuple[Any, Hashable]] = {}  # id(grad_fn) -> (grad_fn, key)
        self.capacity = capacity

    def record(self, out: torch.Tensor, key: Hashable) -> None:
        if out.grad_fn is not None and len(self._nodes) < self.capacity:
            self._nodes[id(out.grad_fn)] = (out.grad_fn, key)

    def clear(self) -> None:
        self._nodes.clear()

    def hidden(self, loss: torch.Tensor) -> set[Hashable]:
        """Keys of the recorded activations that the loss reaches through a weighted op."""
        if not self._nodes or loss.grad_fn is None:
            return set()
        found: set[Hashable] = set()
        seen: set[tuple[int, bool]] = set()
        stack: list[tuple[Any, bool]] = [(loss.grad_fn, False)]
        visits = 0
        while stack and visits < _MAX_VISITS and len(found) < len(self._nodes):
            node, passed = stack.pop()
            if node is None or (id(node), passed) in seen:
                continue
            seen.add((id(node), passed))
            visits += 1
            entry = self._nodes.get(id(node))
            if entry is not None and entry[0] is node and passed:
                found.add(entry[1])
            below = passed or _name(node).startswith(WEIGHTED)
            stack.extend((child, below) for child, _ in node.next_functions)
        return found
