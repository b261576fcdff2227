"""data: the target leaked into the model's inputs.

Two forms of the same bug, both making the training loss collapse at once while the model
learns nothing it can use on real inputs:

* a feature column that is the target (a label column left in the feature matrix, a
  forecasting window that includes the value to predict, a standardised copy of the target):
  on sampled training steps, the model's float input ``(N, F...)`` with ``F >= 2`` columns is
  compared with a one-per-row target ``(N,)`` / ``(N, 1)`` of the same batch; a column whose
  Pearson correlation with the target is ``|r| >= 1 - 1e-6`` (equal up to an affine map) in
  every one of at least 3 sampled batches (64 rows or more) is a leak. A single-feature toy
  regression (``y = 2x + 1``) has one column and is not judged; an autoencoder's target has
  as many columns as its input and is not a one-per-row target.
* a token model trained with targets equal to its inputs at the same positions (no shift):
  a cross-entropy / NLL loss whose integer targets have as many elements as an integer input
  of the model, and equal it at >= 98% of the positions not ignored (``ignore_index``). A
  shifted language model, a denoising or masked model (inputs corrupted or masked where the
  targets count) agree far less. Judged at the end of the run: a warning when the training
  loss fell to <= 30% of its first value (the task was a copy), otherwise info (a sequence
  autoencoder with a bottleneck also predicts its input).
"""

from __future__ import annotations

import math
from typing import Any, Iterable

import numpy as np
import torch

from nndoctor.checks import Check, register
from nndoctor.findings import Finding, Severity
from nndoctor.monitor.events import LossCall, ModelInput, RunEnd
from nndoctor.monitor.tensors import ForwardInputs, is_integer

__all__ = ["REMOVE_COLUMN", "REMOVE_DECODER", "REMOVE_TOKENS", "TargetInInputs"]

CORRELATION = 1 - 1e-6
MIN_BATCHES = 3
MIN_ROWS = 64
MAX_COLUMNS = 4096
TOKEN_SHARE = 0.98
TOKEN_MIN_BATCHES = 2
TOKEN_MIN_POSITIONS = 64
COLLAPSE = 0.3
_TOKEN_LOSSES = frozenset({"cross_entropy", "nll_loss"})
#: the first fix of each form (``fill`` of the catalogue's "Remove {what} from the model's input: {remove}.")
REMOVE_COLUMN = ("build the features without the label column (e.g. X = df.drop(columns=[target])), and end a "
                 "forecasting window before the value it predicts")
REMOVE_TOKENS = "shift the targets of a next-token model (inputs = seq[:, :-1], targets = seq[:, 1:])"
REMOVE_DECODER = ("feed the decoder the targets shifted right (dec_in = torch.cat([bos, tgt[:, :-1]], dim=1)) and "
                  "compare its outputs with tgt; at inference, decode one token at a time")


def _same(a: torch.Tensor, b: torch.Tensor) -> bool:
    """``b`` holds exactly the values of ``a`` (``a`` itself, ``a.view(-1)``, ``a.reshape(-1)``)."""
    if a is b:
        return True
    return a.device == b.device and a.numel() == b.numel() and a.dtype == b.dtype \
        and bool(torch.equal(a.reshape(-1), b.reshape(-1)))


class _Columns:
    """Per-column count of sampled batches in which the column equals the target (affinely)."""

    def __init__(self, n: int) -> None:
        self.hits = np.zeros(n, dtype=np.int64)
        self.batches = 0
        self.rows = 0
        self.first_step = 0


@register
class TargetInInputs(Check):
    """A model input column equal to the target, or token targets equal to the input tokens."""

    code = "data.target-in-inputs"
    needs = ("model_input", "loss", "end")
    sampled_only = frozenset({"model_input", "loss"})

    def __init__(self, state: Any) -> None:
        super().__init__(state)
        self._inputs = ForwardInputs()
        self._columns: dict[tuple[str, str, int], _Columns] = {}
        # (model, loss, input index) -> [equal, positions, batches, first step]
        self._tokens: dict[tuple[str, str, int], list[int]] = {}
        self._first_loss: float | None = None

    def check(self, event: Any) -> Iterable[Finding]:
        if event.kind == "model_input":
            self._on_input(event)
        elif event.kind == "loss":
            self._on_loss(event)
        elif event.kind == "end":
            return self._on_end(event)
        return ()

    def _on_input(self, event: ModelInput) -> None:
        if not event.grad_enabled or not event.training:
            return
        # a label handed to the model for a loss computed inside forward (model(x, labels=y)) is no leak
        # by itself: keyword arguments named after labels or targets are left out
        tensors = [v for v in event.args if isinstance(v, torch.Tensor)]
        tensors += [v for k, v in event.kwargs.items() if isinstance(v, torch.Tensor)
                    and not any(w in k.lower() for w in ("label", "target"))]
        self._inputs.keep(event.step, event.name, tensors)

    def _on_loss(self, event: LossCall) -> None:
        inputs = self._inputs.at(event.step)
        if not event.grad_enabled or event.target is None or inputs is None:
            return
        model = self._inputs.model
        if self._first_loss is None and isinstance(event.result, torch.Tensor) and event.result.numel() == 1:
            value = float(event.result)
            self._first_loss = value if math.isfinite(value) else None
        target = event.target
        for i, x in enumerate(inputs):
            if x is None or x.numel() == 0 or (i > 0 and _same(x, target)):
                continue  # (a second input that is the target itself: model(x, y) computing its own loss)
            if event.name in _TOKEN_LOSSES and is_integer(target) and is_integer(x) and x.numel() == target.numel():
                self._tokens_equal(model, event, x, i)
            elif x.is_floating_point() and x.dim() >= 2 and target.dim() >= 1 and x.shape[0] == target.shape[0] \
                    and target.numel() == target.shape[0]:
                self._column_equal(model, event, x)

    def _tokens_equal(self, model: str, event: LossCall, x: torch.Tensor, index: int) -> None:
        t = event.target.reshape(-1)
        valid = t != int(event.kwargs.get("ignore_index", -100))
        n = int(valid.sum())
        if n == 0 or int(torch.unique(t[valid]).numel()) < 3:
            return
        equal = int(((x.reshape(-1) == t) & valid).sum())
        acc = self._tokens.setdefault((model, event.name, index), [0, 0, 0, event.step])
        acc[0] += equal
        acc[1] += n
        acc[2] += 1

    def _column_equal(self, model: str, event: LossCall, x: torch.Tensor) -> None:
        n = int(x.shape[0])
        cols = x.reshape(n, -1)
        if n < 8 or not 2 <= cols.shape[1] <= MAX_COLUMNS:
            return
        acc = self._columns.get((model, event.name, cols.shape[1]))
        if acc is not None and not (acc.hits == acc.batches).any():
            return  # every column missed a sampled batch: none can be reported any more (leaked = all batches)
        y = event.target.reshape(n).double()
        yc = y - y.mean()
        ny = float(yc.norm())
        if ny == 0 or not math.isfinite(ny):
            return
        xc = cols.double() - cols.double().mean(0)
        r = (xc * yc[:, None]).sum(0) / (xc.norm(dim=0) * ny)
        matched = torch.nan_to_num(r.abs(), nan=0.0) >= CORRELATION
        if acc is None:
            acc = self._columns[(model, event.name, cols.shape[1])] = _Columns(cols.shape[1])
            acc.first_step = event.step
        acc.hits += matched.cpu().numpy()
        acc.batches += 1
        acc.rows += n

    # ------------------------------------------------------------------ verdicts
    def _on_end(self, event: RunEnd) -> list[Finding]:
        found: list[Finding] = []
        for (model, loss, width), acc in self._columns.items():
            if acc.batches < MIN_BATCHES or acc.rows < MIN_ROWS:
                continue
            leaked = np.flatnonzero(acc.hits == acc.batches)
            if len(leaked) == 0 or len(leaked) == width:
                continue  # every column "equal" to the target: a degenerate input, not a leak
            cols = [int(c) for c in leaked[:8]]
            ev = {"model": model, "loss": loss, "columns": cols, "n_columns": width, "batches": acc.batches,
                  "rows": acc.rows, "what": f"column {cols[0]} of the {width} input columns"}
            found.append(self.finding(
                f"input column {cols[0]} of {model} (of {width}) equals the training target up to an affine map in "
                f"all {acc.batches} sampled batches ({acc.rows} rows, {loss}): the label leaked into the "
                f"features, the model can copy it and learns nothing usable on real inputs",
                ev, location=model, step=acc.first_step, fill={"remove": REMOVE_COLUMN}))
        for (model, loss, _), (equal, total, batches, first_step) in self._tokens.items():
            share = equal / total if total else 0.0
            if batches < TOKEN_MIN_BATCHES or total < TOKEN_MIN_POSITIONS or share < TOKEN_SHARE:
                continue
            tail = [v for v in self.state.losses.last(5) if math.isfinite(v)]
            last_loss = sum(tail) / len(tail) if tail else None
            collapsed = bool(last_loss is not None and self._first_loss and last_loss <= COLLAPSE * self._first_loss)
            ev = {"model": model, "loss": loss, "share_equal": round(share, 4), "positions": total,
                  "batches": batches, "first_loss": self._first_loss, "last_loss": last_loss,
                  "what": "the target tokens"}
            found.append(self.finding(
                f"the {loss} targets equal {model}'s input tokens at {share:.0%} of {total} positions "
                f"({batches} sampled batches): the model is asked to predict the token it is given, not the "
                f"next one (no shift), so the loss "
                + ("collapsed " if collapsed else "can fall ") + "to ~0 while it learns nothing usable",
                ev, location=model, step=first_step, severity=None if collapsed else Severity.INFO,
                fill={"remove": REMOVE_TOKENS}))
        return found
