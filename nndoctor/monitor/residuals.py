"""Held-out regression errors the script computes by hand (mixed into the Observer's function mode).

A regression script often scores its validation set with a metric of its own rather than its
training loss: the mean absolute error ``(pred - y).abs().mean()``, an R-squared
``1 - ((pred - y) ** 2).sum() / ((y - y.mean()) ** 2).sum()``, a root mean squared error. No loss
function is called and the training loss's recipe (:mod:`nndoctor.monitor.evalrec`) is not the
one made, so no validation loss was recorded and over-fitting could not show. What every such metric
starts from is the residual: a subtraction of two tensors of the prediction's shape in an
evaluation loop. When the training loss is a regression loss (``mse_loss``, ``l1_loss``,
``smooth_l1_loss``, ``huber_loss``, or a hand-written ``((out - y) ** 2).mean()`` /
``(out - y).abs().mean()``), that residual gives the training loss on the held-out rows, computed
here: the script's own pairing of predictions and targets, the training loss's own scale.

Only subtractions of two floating-point tensors of the same shape, with at least two elements,
whose rows have the shape of the training prediction's rows, count. Their values wait until the
end of the next optimizer step (or of the run): they are recorded only where the run has no other
evaluation loss by then (a loss function or the training recipe in the evaluation loop is the better
record: it also makes a residual first, ``((out - y) ** 2).mean()``) and, with gradients on (a model in
evaluation mode without ``torch.no_grad()``), only where no backward reached them (a residual of
training is no evaluation).
"""

from __future__ import annotations

from typing import Any, Callable

import torch
import torch.nn.functional as F

__all__ = ["REGRESSION_LOSSES", "RESIDUAL_OPS", "ResidualEval"]

#: loss functions of a regression (a residual of the prediction and its target)
REGRESSION_LOSSES = frozenset({"mse_loss", "l1_loss", "smooth_l1_loss", "huber_loss"})
#: the calls that make a residual
RESIDUAL_OPS = frozenset({"sub", "rsub"})
#: hand-written training losses (recipes, see evalrec.recipe_of) that are regression losses
_RECIPES = {("mean", "pow", "sub"): "mse_loss", ("mean", "abs", "sub"): "l1_loss"}


class ResidualEval:
    """The training loss's kind and prediction shape, and the value of a held-out residual."""

    def __init__(self) -> None:
        self.loss: str | None = None            # the training loss (a regression loss), once seen
        self.row_shape: tuple[int, ...] | None = None  # its prediction's shape without the batch
        self.other_source = False               # an evaluation loss was recorded another way
        #: (step, value, model, reached by a backward, hook handle) of residuals not yet recorded
        self.items: list[tuple[int, torch.Tensor, str, list[bool], Any]] = []

    def on_training_loss(self, name: str, inp: Any, target: Any) -> None:
        """A training loss call (with gradients): a regression loss of a float target shaped like
        the prediction makes residuals worth reading."""
        if self.loss is not None or name not in REGRESSION_LOSSES:
            return
        if isinstance(inp, torch.Tensor) and isinstance(target, torch.Tensor) and inp.dim() >= 1 \
                and target.is_floating_point() and inp.numel() == target.numel():
            self.loss, self.row_shape = name, tuple(inp.shape[1:])

    def on_recipe(self, recipe: tuple[str, ...] | None) -> None:
        """A hand-written training loss's recipe (no prediction shape known)."""
        if self.loss is None and recipe is not None and recipe in _RECIPES:
            self.loss = _RECIPES[recipe]

    @property
    def active(self) -> bool:
        return self.loss is not None and not self.other_source

    def value(self, args: tuple[Any, ...], result: Any) -> torch.Tensor | None:
        """The training loss of the residual ``result`` of ``args[0] - args[1]``; None when it is no
        residual of a prediction and its target."""
        if not self.active or len(args) < 2 or not isinstance(result, torch.Tensor):
            return None
        a, b = args[0], args[1]
        if not (isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor)) or a.shape != b.shape \
                or a.dim() < 1 or a.numel() < 2 or not (a.is_floating_point() and b.is_floating_point()) \
                or result.shape != a.shape:
            return None
        if self.row_shape is not None and tuple(a.shape[1:]) != self.row_shape \
                and not (a.dim() == 1 and self.row_shape in ((), (1,))):
            return None
        with torch.no_grad():
            r = result.detach().float()
            if self.loss == "mse_loss":
                return r.pow(2).mean()
            if self.loss == "l1_loss":
                return r.abs().mean()
            zeros = torch.zeros_like(r)
            return F.smooth_l1_loss(r, zeros) if self.loss == "smooth_l1_loss" else F.huber_loss(r, zeros)

    def add(self, step: int, value: torch.Tensor, model: str, residual: torch.Tensor) -> None:
        """A held-out value, recorded by :meth:`flush` unless another evaluation loss turns up or a
        backward reaches ``residual`` (with gradients on) first."""
        if len(self.items) >= 256:
            return
        hit = [False]
        handle = None
        node = residual.grad_fn if residual.requires_grad else None
        if node is not None:
            def reached(*_: Any) -> None:
                hit[0] = True
            handle = node.register_prehook(reached)
        self.items.append((step, value, model, hit, handle))

    def flush(self, record: Callable[[int, torch.Tensor, str], None]) -> None:
        """Record the waiting values (``record(step, value, model)``), unless the run has another
        evaluation loss or a backward reached them."""
        items, self.items = self.items, []
        for step, value, model, hit, handle in items:
            if handle is not None:
                try:
                    handle.remove()
                except Exception:  # (a freed graph: nothing to remove)
                    pass
            if not self.other_source and not hit[0]:
                record(step, value, model)
