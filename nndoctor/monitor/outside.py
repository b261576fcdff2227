"""Held-out regression errors computed outside torch (mixed into the Observer's function mode).

A regression script often scores its validation rows with numpy or scikit-learn: the model's
prediction leaves torch (``model(X_val).detach().numpy()``, ``.tolist()``, ``np.asarray(pred)``) and
is compared with the targets there (``mean_squared_error(y_val, pred)``, ``np.mean((pred - y) ** 2)``,
an R-squared of its own). No torch call compares them, so neither a loss hook nor a held-out
residual (:mod:`nndoctor.monitor.residuals`) records a validation loss, and over-fitting cannot show.
Two things are still seen, and each gives the training loss on the held-out rows:

* the conversions: in an evaluation loop (a forward without gradient or in evaluation mode), two
  floating-point tensors of the training prediction's row shape and of as many elements leave torch
  (``numpy``, ``__array__``, ``tolist``), neither of them the evaluation forward's input: the
  prediction and its target, paired outside torch;
* a scikit-learn regression metric (:mod:`nndoctor.monitor.metric_calls`) called with a prediction of
  that row shape right after a forward that no backward followed (an evaluation, whatever its mode):
  ``y_true`` is the held-out target, whatever it is (a numpy array never seen by torch included).

Both are recorded only when the training loss is a regression loss and where the run has no other
evaluation loss (through :class:`~nndoctor.monitor.residuals.ResidualEval`: same scale, same timing);
a target equal to the training targets seen at the loss is no held-out one.
"""

from __future__ import annotations

import weakref
from typing import Any, NamedTuple

import numpy as np
import torch

from nndoctor.monitor.residuals import ResidualEval

__all__ = ["CONVERT_OPS", "MAX_ELEMENTS", "HeldOut", "OutsideEval"]

#: the calls that take a tensor's values out of torch
CONVERT_OPS = frozenset({"numpy", "__array__", "tolist"})
#: larger conversions are not read (an image batch, a whole embedding table)
MAX_ELEMENTS = 1_000_000
#: conversions kept per evaluation window while their partner is awaited
_PENDING = 8


class HeldOut(NamedTuple):
    """A prediction and its target paired outside torch: the training loss on them, their residual."""

    value: torch.Tensor
    residual: torch.Tensor
    pred: torch.Tensor
    target: torch.Tensor


def _fingerprint(t: torch.Tensor) -> tuple[int, float, float]:
    """Element count, sum and sum of squares to 5 significant digits (float32 or float64 alike)."""
    x = t.detach().reshape(-1).double()
    return int(x.numel()), float(f"{float(x.sum()):.5g}"), float(f"{float((x * x).sum()):.5g}")


class OutsideEval:
    """Predictions and targets paired outside torch in evaluation loops; see the module's text."""

    def __init__(self, residuals: ResidualEval) -> None:
        self.residuals = residuals
        self.step = -1
        self.pending: list[torch.Tensor] = []         # this window's converted tensors, not yet paired
        self.inputs: list[weakref.ReferenceType[torch.Tensor]] = []  # this window's evaluation inputs
        self.train_targets: set[tuple[int, float, float]] = set()  # fingerprints of training targets

    def on_training_target(self, target: Any) -> None:
        """A training loss's target (sampled calls): a held-out target is not one of them."""
        if isinstance(target, torch.Tensor) and target.is_floating_point() and len(self.train_targets) < 64 \
                and 2 <= target.numel() <= MAX_ELEMENTS:
            self.train_targets.add(_fingerprint(target))

    def _window(self, step: int) -> None:
        if step != self.step:
            self.step, self.pending, self.inputs = step, [], []

    def on_eval_input(self, step: int, args: tuple[Any, ...]) -> None:
        """An evaluation forward's input tensors: converted for a plot, they are no target."""
        self._window(step)
        for a in args:
            if isinstance(a, torch.Tensor) and len(self.inputs) < 16:
                self.inputs.append(weakref.ref(a))

    def _rows_fit(self, t: torch.Tensor) -> bool:
        row = self.residuals.row_shape
        if row is None:
            return t.dim() <= 2
        return tuple(t.shape[1:]) == row or (t.dim() == 1 and row in ((), (1,))) \
            or (row == () and t.dim() == 2 and t.shape[1] == 1)

    def _is_input(self, t: torch.Tensor) -> bool:
        """``t``'s values are those of an evaluation forward's input (compared flat: a converted
        tensor waits flattened, and may have left torch before the forward it is the input of)."""
        for ref in self.inputs:
            a = ref()
            if a is not None and a.numel() == t.numel() and a.is_floating_point() and (
                    a.data_ptr() == t.data_ptr() or torch.equal(a.detach().reshape(-1).float(), t.reshape(-1).float())):
                return True
        return False

    def on_convert(self, step: int, tensor: Any) -> HeldOut | None:
        """A tensor leaving torch in an evaluation window: the held-out pair once it pairs with another
        of as many elements, else None."""
        if not self.residuals.active or not isinstance(tensor, torch.Tensor) or not tensor.is_floating_point() \
                or not 2 <= tensor.numel() <= MAX_ELEMENTS or not self._rows_fit(tensor):
            return None
        self._window(step)
        if self._is_input(tensor):
            return None
        t = tensor.detach().reshape(-1).float().clone()
        for i, other in enumerate(self.pending):
            if other.numel() == t.numel() and not torch.equal(other, t) and not self._is_input(other):
                del self.pending[i]  # (by position: list.remove compares tensors with ==, elementwise)
                return self._value(other, t)
        if len(self.pending) < _PENDING:
            self.pending.append(t)
        return None

    def on_metric(self, y_true: Any, y_pred: Any) -> HeldOut | None:
        """A regression metric's arguments as a held-out pair, or None where they are no prediction
        and target of the training loss's shape."""
        if not self.residuals.active:
            return None
        try:
            true = torch.as_tensor(np.asarray(y_true, dtype=np.float64))
            pred = torch.as_tensor(np.asarray(y_pred, dtype=np.float64))
        except (TypeError, ValueError):
            return None
        if true.numel() != pred.numel() or not 2 <= pred.numel() <= MAX_ELEMENTS or not self._rows_fit(pred):
            return None
        return self._value(pred.reshape(-1).float(), true.reshape(-1).float())

    def _value(self, a: torch.Tensor, b: torch.Tensor) -> HeldOut | None:
        if not (torch.isfinite(a).all() and torch.isfinite(b).all()):
            return None
        if _fingerprint(a) in self.train_targets or _fingerprint(b) in self.train_targets:
            return None  # (a training target: the metric of the training rows)
        row = self.residuals.row_shape
        if row and a.numel() % int(np.prod(row)) == 0:  # (a multi-output regression: rows of the prediction's shape)
            a, b = a.reshape(-1, *row), b.reshape(-1, *row)
        residual = a - b
        value = self.residuals.value((a, b), residual)
        return None if value is None else HeldOut(value, residual, a, b)
