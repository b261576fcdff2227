"""Validation losses in the styles the loss-function hooks alone miss (mixed into the Observer).

* Gradients on: a validation forward in evaluation mode (``model.eval()``) without
  ``torch.no_grad()``. Its loss looks like a training loss; what tells them apart is that it
  comes from a model in evaluation mode (the parameter nearest to it in its graph) and that no
  backward ever reaches that forward (the node using that parameter). Each such loss gets a pre-hook on its ``grad_fn`` and waits
  (:class:`PendingEval`) until the end of the next optimizer step (every backward of it is done by
  then) or the end of the run: a loss no backward reached is an evaluation loss. A model that
  trains in evaluation mode (the ``train-mode`` fault) has its losses reached every time: after
  ``TRAINS_IN_EVAL`` of them its evaluation-mode forwards are not watched this way any more.
* Hand-written losses (``((out - y) ** 2).mean()``, ``-(logp.gather(1, y[:, None])).mean()``): the
  training loss's recipe, the names of the last autograd nodes that made it (``mean <- pow <- sub``,
  read on sampled backwards: :func:`recipe_of`), is matched against the torch calls that make a
  scalar in an evaluation loop (:class:`RecipeTracker`): the same recipe is the same loss on
  held-out data. A loss function of ``torch.nn.functional`` is recorded by its own hook instead.
"""

from __future__ import annotations

import re
import weakref
from typing import Any, Callable

import torch

__all__ = ["PendingEval", "RECIPE_OPS", "RecipeTracker", "TRAINS_IN_EVAL", "first_parameter", "recipe_of"]

#: losses of one model reached by a backward: it trains in evaluation mode, stop watching it
TRAINS_IN_EVAL = 3
#: how many autograd nodes (from the loss down) make a recipe
RECIPE_DEPTH = 3
#: torch calls a hand-written loss is made of (their results are followed in evaluation loops)
RECIPE_OPS = frozenset({"mean", "sum", "pow", "square", "sub", "rsub", "neg", "gather", "log_softmax",
                        "abs", "log", "mul", "exp", "softmax", "sigmoid", "logsigmoid", "clamp",
                        "relu", "softplus", "take_along_dim", "index_select"})
#: node names that differ from the call's name
_NODE_ALIASES = {"logsoftmax": "log_softmax", "softmax": "softmax", "logsigmoid": "logsigmoid",
                 "rsub": "sub", "takealongdim": "gather", "clampmin": "clamp", "clampmax": "clamp",
                 "indexselect": "index_select", "square": "pow"}
_CALL_ALIASES = {"rsub": "sub", "square": "pow", "take_along_dim": "gather"}
_SCALE = frozenset({"mul", "div"})  # a loss scaled for accumulation: (loss / k).backward()
_NODE = re.compile(r"^(\w+?)Backward\d*$")


def _node_op(node: Any) -> str | None:
    m = _NODE.match(type(node).__name__) if node is not None else None
    if m is None:
        return None
    name = m.group(1).lower()
    return _NODE_ALIASES.get(name, name)


def recipe_of(loss: torch.Tensor) -> tuple[str, ...] | None:
    """The names of the last autograd nodes that made a scalar loss, along first inputs (a
    scaling by a number first left out): ``("mean", "pow", "sub")`` for ``((out - y) ** 2).mean()``.
    None for a loss made by a loss function (its own hook records it) or not from a reduction."""
    node = loss.grad_fn
    ops: list[str] = []
    for _ in range(RECIPE_DEPTH + 2):
        op = _node_op(node)
        if op is None:
            break
        if not (not ops and op in _SCALE):
            ops.append(op)
        if len(ops) >= RECIPE_DEPTH:
            break
        nxt = getattr(node, "next_functions", ())
        node = nxt[0][0] if nxt else None
    if len(ops) < 2 or ops[0] not in ("mean", "sum", "neg"):
        return None
    if any(op.endswith("loss") for op in ops):
        return None
    return tuple(ops)


def first_parameter(loss: torch.Tensor, limit: int = 64) -> tuple[torch.Tensor | None, Any]:
    """The parameter nearest to ``loss`` in its autograd graph (breadth first, at most ``limit``
    nodes) and the node that uses it (the model's last layer in that forward): which model made
    the loss (a loss logged from a training output after a teacher's forward is the student's,
    not an evaluation), and the node a training backward would reach (a loss logged from an
    output that is trained on is not an evaluation either)."""
    queue: list[tuple[Any, Any]] = [(loss.grad_fn, None)]
    seen = 0
    while queue and seen < limit:
        node, parent = queue.pop(0)
        seen += 1
        if node is None:
            continue
        var = getattr(node, "variable", None)
        if isinstance(var, torch.Tensor):
            return var, parent
        queue.extend((nxt, node) for nxt, _ in getattr(node, "next_functions", ()))
    return None, None


class RecipeTracker:
    """In an evaluation loop: the recipe of each tensor made by :data:`RECIPE_OPS` (weakly), to find
    a scalar made by the training loss's recipe. Each result's recipe is worked out while its
    input is alive (ids of freed temporaries are reused at once without gradients)."""

    def __init__(self) -> None:
        self._made: dict[int, tuple[weakref.ReferenceType[torch.Tensor], tuple[str, ...]]] = {}

    def clear(self) -> None:
        self._made.clear()

    def on_op(self, name: str, args: tuple[Any, ...], result: Any, recipe: tuple[str, ...]) -> bool:
        """Note ``result``; True when it is a scalar made by ``recipe``."""
        if not isinstance(result, torch.Tensor) or not args or not result.is_floating_point():
            return False
        first = args[0]
        if not isinstance(first, torch.Tensor) and len(args) > 1 and isinstance(args[1], torch.Tensor):
            first = args[1]  # (a number minus a tensor: rsub)
        before: tuple[str, ...] = ()
        if isinstance(first, torch.Tensor):
            entry = self._made.get(id(first))
            if entry is not None and entry[0]() is first:
                before = entry[1]
        made = ((_CALL_ALIASES.get(name, name),) + before)[:RECIPE_DEPTH]
        if len(self._made) > 512:
            self._made = {k: v for k, v in self._made.items() if v[0]() is not None}
        self._made[id(result)] = (weakref.ref(result), made)
        return result.numel() == 1 and made[:len(recipe)] == recipe and len(made) >= len(recipe)


class PendingEval:
    """Losses computed with gradients on in evaluation-mode forwards, until a step tells whether a
    backward reached them."""

    def __init__(self) -> None:
        self.items: list[tuple[int, torch.Tensor, list[bool], Any, str]] = []
        self.trained: dict[str, int] = {}  # model name -> its losses a backward reached

    def watching(self, model: str) -> bool:
        return self.trained.get(model, 0) < TRAINS_IN_EVAL

    def add(self, step: int, loss: torch.Tensor, model: str, value: torch.Tensor | None = None,
            node: Any = None) -> None:
        """Wait for a step to tell whether a backward reaches ``node`` (the loss's own by default;
        ``value``: what to record, the loss itself unless rescaled)."""
        node = loss.grad_fn if node is None else node
        if node is None or len(self.items) >= 256 or not self.watching(model):
            return
        hit = [False]

        def reached(*_: Any) -> None:
            hit[0] = True

        handle = node.register_prehook(reached)
        self.items.append((step, (loss if value is None else value).detach(), hit, handle, model))

    def resolve(self, record: Callable[[int, torch.Tensor, str], None]) -> None:
        """Record the losses no backward reached (``record(step, value, model)``); count the others
        against their model."""
        items, self.items = self.items, []
        for step, value, hit, handle, model in items:
            try:
                handle.remove()
            except Exception:  # (a freed graph: nothing to remove)
                pass
            if hit[0]:
                self.trained[model] = self.trained.get(model, 0) + 1
            else:
                record(step, value, model)
