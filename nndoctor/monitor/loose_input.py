"""The input of a network written without ``nn.Module``: one shared notion for the checks that
judge a model's input.

A network whose weights are plain tensors (``W1 = torch.randn(2, 8, requires_grad=True)``,
``h = torch.tanh(x @ W1 + b1)``, an optimizer over a list of tensors) has no root module, so the
observer sends no :class:`~nndoctor.monitor.events.ModelInput`: the checks that read the model's
input (the observed-data sample behind the label and capacity probes, the linear-model check,
the input-noise and truncation checks) saw nothing. Here the function mode's ops stand in: in a
sampled training step of a run with no model module, the first op that multiplies a data tensor
(no gradient, a batch along dim 0) by a trained leaf tensor (``x @ W``, ``torch.mm``,
``torch.addmm``, ``F.linear``, ``F.conv2d``, ``F.embedding(ids, E)``) is the
network's input. :func:`loose_input` turns that op into a :class:`LooseInput` (a ``ModelInput``
whose ``model`` is None, named :data:`NAME`), the same for every check that asks about the same
op event, and at most one per step.

:func:`linear_graph` reads the autograd graph behind an output: whether it is a linear map of its
inputs (weighted ops, sums, reshapes, scalings only), for the networks whose layers are not modules.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from nndoctor.monitor.events import ModelInput, OpCall

__all__ = ["INPUT_OPS", "NAME", "LooseInput", "linear_graph", "loose_input"]

NAME = "network"  # what a module-less network is called in findings
KEY = "nndoctor.loose_input"

#: ops that multiply their first (data) argument by a weight; position of the data and the weight
_DATA_FIRST = {"matmul": (0, 1), "mm": (0, 1), "linear": (0, 1), "conv1d": (0, 1), "conv2d": (0, 1),
               "conv3d": (0, 1), "addmm": (1, 2), "embedding": (0, 1)}
#: (not ``E[ids]``: indexing is too common an op to hand every one to the checks on sampled steps)
INPUT_OPS = frozenset(_DATA_FIRST)
_INDEX_OPS = frozenset({"embedding"})  # the data are integer ids

#: autograd nodes of a linear map (of the data, through weights): weighted ops, sums, reshapes
_LINEAR_NODES = ("MmBackward", "AddmmBackward", "MvBackward", "AddmvBackward", "BmmBackward",
                 "ConvolutionBackward", "LinearBackward", "AddBackward", "SubBackward", "ViewBackward",
                 "UnsafeViewBackward", "ReshapeAliasBackward", "TBackward", "TransposeBackward",
                 "PermuteBackward", "ExpandBackward", "SqueezeBackward", "UnsqueezeBackward", "CloneBackward",
                 "ToCopyBackward", "AccumulateGrad", "NegBackward", "SumBackward", "MeanBackward",
                 "CatBackward", "StackBackward", "SliceBackward", "SelectBackward", "IndexBackward",
                 "EmbeddingBackward")
_SCALE_NODES = ("MulBackward", "DivBackward")  # linear only when one side is a constant
_WEIGHTED = ("MmBackward", "AddmmBackward", "MvBackward", "AddmvBackward", "BmmBackward", "ConvolutionBackward",
             "LinearBackward")
_MAX_NODES = 2000
#: an output link on top of the linear map: still a linear classifier
_LINKS = ("LogSoftmaxBackward", "SoftmaxBackward", "SigmoidBackward", "LogSigmoidBackward")


@dataclass
class LooseInput(ModelInput):
    """The input of a module-less network in a sampled training step (``model`` is None)."""

    op: str = ""
    site: str = ""


def _trained_leaf(t: Any) -> bool:
    return isinstance(t, torch.Tensor) and t.requires_grad and t.grad_fn is None and t.is_floating_point()


def _data(t: Any, ids: bool) -> bool:
    if not isinstance(t, torch.Tensor) or t.requires_grad or t.dim() < (1 if ids else 2) or t.shape[0] < 2:
        return False
    if ids:
        return t.dtype in (torch.int64, torch.int32, torch.int16, torch.int8, torch.uint8)
    return t.is_floating_point()


def _find(state: Any, event: OpCall) -> LooseInput | None:
    if state.models or event.module or event.name not in _DATA_FIRST:
        return None
    result = event.result
    if not isinstance(result, torch.Tensor) or result.grad_fn is None:
        return None  # computed without gradient (an evaluation): not a training forward
    data_at, weight_at = _DATA_FIRST[event.name]
    args = event.args
    if len(args) <= max(data_at, weight_at):
        return None
    x, w = args[data_at], args[weight_at]
    if not (_trained_leaf(w) and _data(x, event.name in _INDEX_OPS)):
        return None
    return LooseInput(model=None, name=NAME, args=(x,), kwargs={}, step=event.step,  # type: ignore[arg-type]
                      training=True, grad_enabled=True, sampled=True, op=event.name, site=event.site)


def loose_input(state: Any, event: OpCall) -> LooseInput | None:
    """The module-less network's input that ``event`` feeds (the first such op of its step), else
    None. Every check asking about the same op event gets the same answer."""
    cached = state.extra.get(KEY)
    if cached is not None and cached[0] is event:
        return cached[1]
    last_step = cached[2] if cached is not None else -1
    found = _find(state, event) if event.step != last_step else None
    state.extra[KEY] = (event, found, event.step if found is not None else last_step)
    return found


def _constant(child: Any) -> bool:
    return child is None


def _weight(child: Any, hops: int = 3) -> bool:
    """``child`` is a trained leaf, through at most ``hops`` transposes or reshapes."""
    for _ in range(hops + 1):
        if child is None:
            return False
        name = type(child).__name__
        if name == "AccumulateGrad":
            return True
        if not name.startswith(("TBackward", "TransposeBackward", "PermuteBackward", "ViewBackward",
                                "ExpandBackward", "UnsafeViewBackward")) or len(child.next_functions) != 1:
            return False
        child = child.next_functions[0][0]
    return False


def linear_graph(out: torch.Tensor) -> bool | None:
    """Whether ``out`` is a linear map of the data through trained weights (under at most an output
    softmax / sigmoid link): every autograd node between it and the leaves is a weighted op, a sum,
    a reshape or a scaling by a constant, and at least one is a weighted op. None when the graph is
    too large to read."""
    if out.grad_fn is None:
        return None
    top = out.grad_fn
    if type(top).__name__.startswith(_LINKS) and len(top.next_functions) == 1:
        top = top.next_functions[0][0]  # the output link of a linear classifier (softmax regression)
    seen: set[int] = set()
    stack = [top]
    weighted = False
    while stack:
        node = stack.pop()
        if node is None or id(node) in seen:
            continue
        seen.add(id(node))
        if len(seen) > _MAX_NODES:
            return None
        name = type(node).__name__
        children = [child for child, _ in node.next_functions]
        if name.startswith(_SCALE_NODES):
            if sum(not _constant(c) for c in children) > 1:
                return False  # a product of two things that depend on the weights (or on each other)
        elif name.startswith(_WEIGHTED):
            if sum(not _constant(c) and not _weight(c) for c in children) > 1:
                return False  # two activations multiplied (attention): not a linear map of the data
            weighted = True
        elif not name.startswith(_LINEAR_NODES):
            return False
        stack.extend(children)
    return weighted
