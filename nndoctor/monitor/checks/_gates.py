"""Gated activations: ``tanh(a) * sigmoid(b)`` (WaveNet, PixelCNN, an LSTM cell written by hand).

Not a check module (the leading underscore keeps the autoloader away). In a gated unit the output
is the product of two activations of (usually) the same input, so the gradient reaches the layers
before it along two paths: ``d/da = tanh'(a) * sigmoid(b)`` and ``d/db = tanh(a) * sigmoid'(b)``.
A saturated tanh (``|a| > 3``) blocks the first path but opens the second one fully
(``|tanh(a)| ~ 1``), and a gate saturated at 0 or 1 is how gating works; only when BOTH members
saturate does no gradient pass. :func:`gate_pairs` finds such products in the autograd graph of a
loss: a multiplication whose two operands are the outputs of two recorded tanh/sigmoid calls.

The walk is bounded (:data:`MAX_NODES`) and runs on sampled steps only, under ``torch.no_grad()``.
"""

from __future__ import annotations

from typing import Hashable

import torch

from nndoctor.debug.grad_cut import walk_graph

__all__ = ["MAX_NODES", "gate_pairs"]

MAX_NODES = 4000  # autograd nodes walked from the loss


def gate_pairs(loss: torch.Tensor, act_nodes: dict[int, Hashable]) -> list[tuple[Hashable, Hashable]]:
    """Pairs of activation sites (keys of ``act_nodes``, which maps the id of an activation output's
    autograd node to its site) whose outputs are multiplied together in the graph of ``loss``."""
    root = getattr(loss, "grad_fn", None)
    if root is None or not act_nodes:
        return []
    pairs: list[tuple[Hashable, Hashable]] = []
    with torch.no_grad():
        for node in walk_graph(root, MAX_NODES):
            if not type(node).__name__.startswith("MulBackward"):
                continue
            keys = [act_nodes.get(id(nxt)) for nxt, _ in getattr(node, "next_functions", ()) if nxt is not None]
            if len(keys) == 2 and keys[0] is not None and keys[1] is not None and keys[0] != keys[1]:
                pair = (keys[0], keys[1])
                if pair not in pairs:
                    pairs.append(pair)
    return pairs

