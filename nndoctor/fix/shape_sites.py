"""Where in the script a shape finding without a runtime remedy is to be edited.

The input-dependence probe (:mod:`nndoctor.debug.input_dependence`) measures, from gradients, that a
model's prediction for one sample reads other samples of its batch (``shape.samples-mixed-across-batch``)
or one time step of its sequence (``shape.prediction-from-one-time-step``). No hook can undo that in
general (which reshape was meant, which step should be read?), so ``nndoctor fix`` re-runs nothing and
names the line to edit (:mod:`nndoctor.fix.unremedied`):

* samples mixed: the model's reshape (``view``/``reshape``/``flatten``/``.t()``/``transpose``/``permute``)
  inside a ``forward`` (or a lambda layer), a reshape first, else a transpose;
* one time step: for the first step (index 0), the indexing that reads it (``out[:, 0]``, ``x[:, 0]``,
  ``out[0]``) inside a ``forward``; for another step, the recurrent layer's construction (``batch_first``
  not matching its input), else an indexing of that step.
"""

from __future__ import annotations

import ast
import re
from typing import Any

from nndoctor.fix.source import Source

__all__ = ["SHAPE_CODES", "shape_line"]

SHAPE_CODES = ("shape.samples-mixed-across-batch", "shape.prediction-from-one-time-step")

_RESHAPE = re.compile(r"\.(view|reshape)\(|torch\.reshape\(|\.flatten\(|torch\.flatten\(")
_TRANSPOSE = re.compile(r"\.t\(\)|\.T\b|\.transpose\(|\.permute\(|\.swapaxes\(|torch\.transpose\(")
_NOT_SIZE = r"(?<!shape)(?<!size\(\))"  # (x.shape[0], x.size()[0]: a size, not a time step)
_FIRST = re.compile(_NOT_SIZE + r"\[\s*(:\s*,\s*)?0\s*(,\s*:\s*)?\]")
_INDEX = re.compile(_NOT_SIZE + r"\[\s*(:\s*,\s*)?-?\d+\s*(,\s*:\s*)?\]")
_RECURRENT = re.compile(r"nn\.(LSTM|GRU|RNN)\(|\b(LSTM|GRU|RNN)\(")


def _model_lines(src: Source) -> list[int]:
    """Line numbers of ``forward`` bodies and of lambdas (a ``Lambda(lambda x: x.view(...))`` layer)."""
    out: set[int] = set()
    for node in ast.walk(src.tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name in ("forward", "__call__"):
            out.update(range(node.body[0].lineno, (node.end_lineno or node.lineno) + 1))
        elif isinstance(node, ast.Lambda):
            out.update(range(node.lineno, (node.end_lineno or node.lineno) + 1))
    return sorted(out)


def _first(src: Source, lines: list[int], rx: re.Pattern[str]) -> int | None:
    for i in lines:
        text = src.line(i).split("#", 1)[0]
        if rx.search(text):
            return i
    return None


def shape_line(f: dict[str, Any], src: Source) -> int | None:
    """The line of ``src`` to edit for a shape finding of :data:`SHAPE_CODES` (None: not found)."""
    code, ev = f.get("code"), f.get("evidence") or {}
    model, every = _model_lines(src), list(range(1, len(src.lines) + 1))
    if code == "shape.samples-mixed-across-batch":
        for rx in (_RESHAPE, _TRANSPOSE):
            line = _first(src, model, rx)
            if line is not None:
                return line
        return _first(src, every, _RESHAPE)
    if code == "shape.prediction-from-one-time-step":
        if ev.get("time_step") == 0:
            order = [(model, _FIRST), (every, _FIRST), (every, _RECURRENT)]
        else:
            order = [(every, _RECURRENT), (model, _INDEX)]
        for lines, rx in order:
            line = _first(src, lines, rx)
            if line is not None:
                return line
    return None
