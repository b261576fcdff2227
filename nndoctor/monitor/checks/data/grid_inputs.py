"""Evaluation inputs that are no sample of data: evenly spread rows, and grids made to draw a function.

:mod:`nndoctor.monitor.checks.data.eval_inputs` compares the statistics of a model's evaluation
inputs with its training inputs'. Two helpers keep that comparison about data:

* :func:`spread_rows` reads a large batch through rows spread evenly over it (its first rows are no
  sample of a sorted batch: the first 256 points of ``torch.linspace(-4, 4, 1001)`` span -4..-2);
* :func:`is_grid` tells a full grid of evenly spaced points (``torch.linspace`` over one feature, a
  flattened ``meshgrid`` over two or three), which a script builds to draw its fitted function, often
  over a wider range than its training inputs on purpose (an extrapolation plot): no evaluation of data.
"""

from __future__ import annotations

import torch

from nndoctor.monitor.tensors import local

__all__ = ["is_grid", "spread_rows"]

#: rows of one batch read for its statistics
READ_ROWS = 256
#: a grid has at least this many points
GRID_MIN_ROWS = 16
#: a grid of evaluation points has at most this many features ...
GRID_MAX_FEATURES = 3
#: ... and at most this many rows (larger batches are not looked at for it)
GRID_MAX_ROWS = 100_000
#: consecutive grid values differ by the same step within this share of it (float32 linspace rounding)
GRID_STEP_TOL = 1e-3


def spread_rows(x: torch.Tensor, limit: int = READ_ROWS) -> torch.Tensor:
    """At most ``limit`` rows of ``x`` spread evenly over it (a sorted batch's first rows are no sample of it)."""
    n = x.shape[0]
    return x if n <= limit else x[:: -(-n // limit)]


def is_grid(x: torch.Tensor) -> bool:
    """Whether a (rows x features) batch is a full grid of evenly spaced points: one to three features,
    each taking evenly spaced values, every combination once (``torch.linspace`` for one feature, a
    ``meshgrid`` flattened for two or three): points made to draw a function, not data. A data set's rows
    never are (raw images have hundreds of features; a table's values are not all combinations of evenly
    spaced ones)."""
    if x.dim() != 2 or not 1 <= x.shape[1] <= GRID_MAX_FEATURES or not GRID_MIN_ROWS <= x.shape[0] <= GRID_MAX_ROWS \
            or not x.is_floating_point() or x.layout != torch.strided or x.device.type == "meta":
        return False
    t = local(x).detach().double()
    if not bool(torch.isfinite(t).all()):
        return False
    combinations = 1
    for j in range(t.shape[1]):
        values = torch.unique(t[:, j])
        if values.numel() < 2:
            return False
        steps = values.diff()
        if float(steps.max() - steps.min()) > GRID_STEP_TOL * float(steps.mean()):
            return False
        combinations *= values.numel()
    return combinations == t.shape[0] and (t.shape[1] == 1 or torch.unique(t, dim=0).shape[0] == t.shape[0])
