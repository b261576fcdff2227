"""activation: a softmax used as a hidden activation (its spread-out rows feed a weighted layer).

Both styles are seen the same way: ``nn.Softmax`` modules and ``F.softmax`` / ``torch.softmax`` /
``x.softmax()`` in a forward all go through the function mode, which records the provenance of
their result. On sampled training steps the input of every ``nn.Linear`` of a model is looked up:
a softmax over the last dimension whose rows are spread out (mean row maximum below
``UNIFORM_FACTOR / width`` and below ``MAX_ROW_MAX``, width >= ``MIN_WIDTH``) is a squashed hidden signal.
(The softmax of N(0, 1) pre-activations over 64 units has a mean row maximum of ~6.5 / width, over
256 units ~10 / width: the bound holds whatever the layer's initialisation scale.) Attention weights
(softmax into a matmul), sharp gates (Gumbel-softmax, routing: rows near one-hot) and model inputs
never match. A layer warns after ``STREAK`` sampled steps in a row. Layers written without a module
(``torch.softmax(x @ W1 + b1, 1) @ W2``, ``F.linear(h, W2)``) are seen as the ``matmul``/``mm``/``linear``
op whose second argument is a trainable weight tensor (a leaf that a model or an optimizer holds),
named by that weight; attention's ``softmax(q @ k.T) @ v`` multiplies by a computed tensor: never.
A softmax over cosine similarities (``beta * normalize(q) @ normalize(K).T``: both operands
L2-normalised, scaled by a temperature) is a retrieval distribution over prototypes or stored
patterns (a modern Hopfield layer, soft assignment to normalised prototypes), spread out while the
stored patterns are still random and sharp once trained: never a hidden activation either.
"""

from __future__ import annotations

from typing import Any, Iterable

import torch

from nndoctor.checks import Check, register
from nndoctor.findings import Finding
from nndoctor.monitor.events import ModuleOutput, OpCall

__all__ = ["SoftmaxHidden", "cosine_softmax"]

MIN_WIDTH = 8
UNIFORM_FACTOR = 16.0
MAX_ROW_MAX = 0.3  # (and never above this: a softmax this sharp is a gate or a selection)
STREAK = 3
#: autograd nodes that a temperature, a transpose or a reshape puts between a similarity matmul and
#: its L2-normalised operands (``F.normalize`` is ``x / norm(x).clamp_min(eps).expand_as(x)``)
_PASS = ("MulBackward", "DivBackward", "ExpBackward", "TBackward", "TransposeBackward", "PermuteBackward",
         "ViewBackward", "UnsafeViewBackward", "ReshapeAliasBackward", "ExpandBackward", "UnsqueezeBackward",
         "CloneBackward")
_MATMUL = ("MmBackward", "BmmBackward")
_NORMS = ("LinalgVectorNormBackward", "NormBackward")
_DEPTH = 4


def _name(node: Any) -> str:
    return type(node).__name__


def _children(node: Any) -> list[Any]:
    return [n for n, _ in getattr(node, "next_functions", ()) if n is not None]


def _normalised(node: Any, depth: int = _DEPTH) -> bool:
    """Whether the tensor of autograd node ``node`` is an L2-normalised one (up to a temperature, a
    transpose or a reshape): a division by its own vector norm."""
    if node is None or depth < 0:
        return False
    if _name(node).startswith("DivBackward"):
        todo, seen = _children(node), 0
        while todo and seen < 8:  # the divisor: norm(x) behind an expand / clamp_min
            nxt = todo.pop()
            seen += 1
            if _name(nxt).startswith(_NORMS):
                return True
            if _name(nxt).startswith(("ExpandBackward", "ClampMinBackward", "ClampBackward", "AddBackward")):
                todo.extend(_children(nxt))
    if _name(node).startswith(_PASS):
        return any(_normalised(child, depth - 1) for child in _children(node))
    return False


def cosine_softmax(x: torch.Tensor) -> bool:
    """Whether ``x`` is the softmax of a (temperature-scaled) similarity of two L2-normalised tensors."""
    node = x.grad_fn
    if node is None or not _name(node).startswith("SoftmaxBackward"):
        return False
    todo = _children(node)
    for _ in range(_DEPTH):  # down to the similarity matmul, through a temperature or a reshape
        matmuls = [n for n in todo if _name(n).startswith(_MATMUL)]
        if matmuls:
            return any(len(_children(m)) == 2 and all(_normalised(c) for c in _children(m)) for m in matmuls)
        todo = [c for n in todo if _name(n).startswith(_PASS) for c in _children(n)]
    return False


@register
class SoftmaxHidden(Check):
    """Near-uniform softmax rows fed as features to an nn.Linear inside the model."""

    code = "activation.softmax-as-hidden-activation"
    needs = ("module_output", "op")
    ops = frozenset({"matmul", "mm", "linear"})
    module_types = (torch.nn.Linear,)

    def __init__(self, state: Any) -> None:
        super().__init__(state)
        self._streak: dict[str, tuple[int, int]] = {}  # layer -> (last step seen, steps in a row)
        self._reported: set[str] = set()
        self._linear_key: tuple[int, ...] | None = None
        self._linear_ids: set[int] = set()

    def check(self, event: ModuleOutput | OpCall) -> Iterable[Finding]:
        if isinstance(event, OpCall):
            w = event.args[1] if len(event.args) > 1 else None
            if not (isinstance(w, torch.Tensor) and w.is_leaf and w.requires_grad and w.dim() == 2
                    and id(w) in self.state.param_refs and isinstance(event.result, torch.Tensor)
                    and event.result.requires_grad):
                return ()
            if id(w) in self._linear_weights():
                return ()  # the F.linear inside an nn.Linear: judged as the module
            return self._judge(self.state.param_name(w), event.args[0], event.step)
        module = event.module
        if not event.grad_enabled or not isinstance(module, torch.nn.Linear) or event.name in self._reported:
            return ()
        return self._judge(event.name, event.inputs[0] if event.inputs else None, event.step)

    def _linear_weights(self) -> set[int]:
        """Ids of the weights of the nn.Linear modules of the watched models (cached per model set)."""
        models = self.state.live_models()
        key = tuple(id(root) for _, root in models)
        if key != self._linear_key:
            self._linear_key = key
            self._linear_ids = {id(m.weight) for _, root in models for m in root.modules()
                                if isinstance(m, torch.nn.Linear)}
        return self._linear_ids

    def _judge(self, name: str, x: object, step: int) -> Iterable[Finding]:
        if name in self._reported:
            return ()
        if (not isinstance(x, torch.Tensor) or not x.requires_grad or x.dim() < 2 or x.shape[-1] < MIN_WIDTH
                or x.numel() == 0):
            return ()
        observer = self.state.observer
        prov = observer.provenance(x) if observer is not None else None
        if prov is None or prov.op != "softmax":
            return ()
        if prov.dim is not None and prov.dim not in (-1, x.dim() - 1):
            return ()
        if cosine_softmax(x):
            return ()  # retrieval over normalised prototypes / stored patterns (a Hopfield layer)
        width = int(x.shape[-1])
        rows = x.detach().reshape(-1, width).float()
        row_max = float(rows.max(dim=1).values.mean())
        if row_max >= min(UNIFORM_FACTOR / width, MAX_ROW_MAX):
            self._streak.pop(name, None)
            return ()
        last, count = self._streak.get(name, (-1, 0))
        if step == last:
            return ()
        count += 1  # a sampled step whose rows were not near-uniform reset the streak above
        self._streak[name] = (step, count)
        if count < STREAK:
            return ()
        self._reported.add(name)
        where = prov.module or "the forward"
        evidence = {"location": name, "softmax_at": where, "width": width,
                    "mean_row_max": round(row_max, 5), "uniform": round(1.0 / width, 5), "steps": count}
        return [self.finding(
            f"{name} receives softmax output (from {where}) as its input features: rows of {width} "
            f"values that sum to 1 and are spread out (mean row maximum {row_max:.4f}, uniform "
            f"{1.0 / width:.4f}) at {count} sampled steps in a row; a softmax as a hidden activation squashes "
            f"the signal and its gradient by about {width}x",
            evidence, location=name)]
