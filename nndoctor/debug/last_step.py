"""data: right-padded sequences of different lengths classified from their last time step.

A batch of variable-length sequences padded on the right (a pad token, or all-zero feature vectors)
is run through an RNN/LSTM/GRU or a transformer, and the per-sequence prediction is read at the last
position: ``out[:, -1]``, ``out[:, -1, :]``, ``out.select(1, -1)`` or the final hidden state ``h_n`` of
a recurrent layer run over the padded tensor (not a ``PackedSequence``). For every sequence shorter
than the batch, that position is padding: a recurrent state that has just read several pad steps, or
a transformer output of a pad query. Short sequences are classified from padding; the model learns
slower and depends on how much padding the batch happens to have.

Evidence, on sampled training steps: the model's input holds right padding - an integer ``(N, T)``
token tensor whose ``padding_idx`` (of one of the model's ``nn.Embedding`` layers) or trailing run
value fills the end of >= ``MIN_ROWS`` of the rows with runs of at least two different lengths and
never occurs inside a sequence, or a float ``(N, T, F)`` tensor whose trailing time steps are exactly
zero in the same way while exact zeros are rare (< 1%) in the real steps. Then, on the same step,
either a tensor of the same batch and time size (``(N, T, ...)``, or ``(T, N, ...)`` time-major) is
indexed at the last position (index -1 or T-1 on the time axis, all else whole), or the ``h_n`` of a
recurrent layer run over the padded batch (not packed) reaches a ``linear`` layer (through indexing,
squeeze, views, cat, dropout...), and a loss of per-sequence predictions (``(N, C)`` or ``(N,)``)
follows. Two such sampled steps make the warning. Packed sequences, left padding, sequences of one
length, a gather at ``lengths - 1``, the first position (a CLS token) and masked mean pooling are quiet.
"""

from __future__ import annotations

import weakref
from typing import Any, Iterable

import torch
from torch import nn

from nndoctor.checks import Check, register
from nndoctor.debug.padding import _embedding_pads
from nndoctor.findings import Finding
from nndoctor.monitor.events import LossCall, ModelInput, ModuleOutput, OpCall, RunEnd
from nndoctor.monitor.functions import user_site
from nndoctor.monitor.marks import TensorMarks
from nndoctor.monitor.tensors import is_integer

__all__ = ["LastStepOfPadded", "MIN_ROWS", "last_index_dim", "right_padding"]

MIN_ROWS = 0.2  # share of the rows that end with padding
MIN_T = 3
MIN_STEPS = 2
ZERO_SHARE = 0.01  # exact zeros allowed among the real steps of a zero-padded float input
_PROPAGATE = frozenset({"getitem", "select", "squeeze", "transpose", "permute", "contiguous", "view", "reshape",
                        "flatten", "dropout", "relu", "tanh", "cat", "clone", "unsqueeze", "float", "to"})
_READ = frozenset({"getitem", "select", "narrow"})


def _trailing(m: torch.Tensor) -> torch.Tensor:
    """``(N, T)``: True on the trailing run of ``m`` in each row."""
    return m.flip(1).to(torch.int8).cumprod(1).bool().flip(1)


def right_padding(x: torch.Tensor, pads: list[int]) -> tuple[str, torch.Tensor] | None:
    """``(what, (N, T) mask)`` of the right padding of a model input, or None (see the module doc)."""
    if x.dim() == 2 and is_integer(x) and x.shape[1] >= MIN_T:
        candidates = [(f"padding_idx={p}", x == p) for p in pads]
        values, counts = torch.unique(x[:, -1], return_counts=True)
        top = int(values[int(counts.argmax())])
        candidates.append((f"token {top}", x == top))
    elif x.dim() == 3 and x.is_floating_point() and x.shape[1] >= MIN_T:
        zero = (x == 0).all(dim=2)
        candidates = [("all-zero time steps", zero)]
    else:
        return None
    for what, m in candidates:
        run = _trailing(m)
        padded_rows = run[:, -1]
        if float(padded_rows.float().mean()) < MIN_ROWS or bool(run.all(dim=1).any()):
            continue  # few rows padded, or a row of padding only
        if int((m & ~run).sum()) > 0.02 * max(int(m.sum()), 1):
            continue  # the value also occurs inside the sequences: a real token
        if int(torch.unique(run.sum(1)[padded_rows]).numel()) < 2:
            continue  # one run length: an end token, or sequences of one length
        if x.dim() == 3:
            real = ~run
            zeros = float((x == 0)[real].float().mean()) if bool(real.any()) else 1.0
            if zeros >= ZERO_SHARE:
                continue  # exact zeros are common in the data: zero steps are no evidence of padding
        return what, run
    return None


def _int_value(v: Any) -> int | None:
    if isinstance(v, bool):
        return None
    if isinstance(v, int):
        return v
    if isinstance(v, torch.Tensor) and v.dim() == 0 and not v.is_floating_point() and v.dtype != torch.bool:
        return int(v)
    return None


def last_index_dim(name: str, args: tuple[Any, ...], shape: tuple[int, ...]) -> int | None:
    """The dim that ``getitem``/``select``/``narrow`` reads at its last position only (all else whole)."""
    if name == "select" and len(args) >= 3:
        dim, index = _int_value(args[1]), _int_value(args[2])
        if dim is None or index is None or not shape:
            return None
        dim %= len(shape)
        return dim if index in (-1, shape[dim] - 1) else None
    if name == "narrow" and len(args) >= 4:
        dim, start, length = _int_value(args[1]), _int_value(args[2]), _int_value(args[3])
        if dim is None or start is None or length != 1 or not shape:
            return None
        dim %= len(shape)
        return dim if start in (-1, shape[dim] - 1) else None
    if name != "getitem" or len(args) < 2:
        return None
    index = args[1] if isinstance(args[1], tuple) else (args[1],)
    found: int | None = None
    for d, item in enumerate(index):
        if item is Ellipsis:
            return None
        if isinstance(item, slice):
            if item == slice(None):
                continue
            start = _int_value(item.start) if item.start is not None else None
            if found is None and d < len(shape) and start in (-1, shape[d] - 1) and item.stop is None \
                    and item.step is None:
                found = d
                continue
            return None
        value = _int_value(item)
        if value is None or found is not None or d >= len(shape) or value not in (-1, shape[d] - 1):
            return None
        found = d
    return found


@register
class LastStepOfPadded(Check):
    """Per-sequence predictions read at the last position of right-padded sequences."""

    code = "data.last-step-of-padded"
    needs = ("model_input", "module_output", "op", "loss", "end")
    ops = frozenset(_PROPAGATE | _READ | {"linear"})
    sampled_only = frozenset({"model_input", "module_output", "op", "loss"})
    module_types = (nn.RNNBase,)  # (its ops and inputs: whatever the model holds)

    def __init__(self, state: Any) -> None:
        super().__init__(state)
        self._pads: dict[int, tuple[weakref.ReferenceType[nn.Module], list[int]]] = {}
        self._pad: dict[str, Any] | None = None
        self._marked: TensorMarks[bool] = TensorMarks(1024)
        self._read: dict[str, Any] | None = None
        self._hits: list[dict[str, Any]] = []
        self._steps: set[int] = set()

    def check(self, event: Any) -> Iterable[Finding]:
        kind = event.kind
        if kind == "op":
            if self._pad is not None and self._pad["step"] == event.step and self._read is None:
                self._on_op(event)
        elif kind == "module_output":
            if self._pad is not None and self._pad["step"] == event.step and event.grad_enabled:
                self._on_module(event)
        elif kind == "model_input":
            self._on_input(event)
        elif kind == "loss":
            self._on_loss(event)
        elif kind == "end":
            return self._on_end(event)
        return ()

    def _on_input(self, event: ModelInput) -> None:
        self._pad, self._read = None, None
        self._marked.clear()
        if not event.grad_enabled:
            return
        cached = self._pads.get(id(event.model))
        if cached is None or cached[0]() is not event.model:
            cached = self._pads[id(event.model)] = (weakref.ref(event.model), _embedding_pads(event.model))
        for v in list(event.args) + list(event.kwargs.values()):
            if isinstance(v, torch.Tensor):
                found = right_padding(v.detach(), cached[1])
                if found is not None:
                    what, run = found
                    n, t = run.shape
                    lengths = t - run.sum(1)
                    self._pad = {"step": event.step, "model": event.name, "n": n, "t": t, "what": what,
                                 "rows": round(float(run[:, -1].float().mean()), 4),
                                 "mean_pad": round(float(run.sum(1)[run[:, -1]].float().mean()), 2),
                                 "min_length": int(lengths.min())}
                    return

    def _geometry(self, shape: tuple[int, ...]) -> int | None:
        """The time axis of a ``(N, T, ...)`` (1) or ``(T, N, ...)`` (0) tensor of the padded batch."""
        assert self._pad is not None
        n, t = self._pad["n"], self._pad["t"]
        if len(shape) >= 2 and shape[0] == n and shape[1] == t:
            return 1
        if len(shape) >= 2 and shape[0] == t and shape[1] == n:
            return 0
        return None

    def _on_module(self, event: ModuleOutput) -> None:
        if not isinstance(event.module, nn.RNNBase) or not event.inputs:
            return
        x = event.inputs[0]
        if not isinstance(x, torch.Tensor) or self._geometry(tuple(x.shape)) is None:
            return  # a PackedSequence (or another batch): h_n is right
        out = event.output
        if not (isinstance(out, tuple) and len(out) == 2):
            return
        h = out[1][0] if isinstance(out[1], tuple) else out[1]
        if isinstance(h, torch.Tensor):
            self._marked.put(h, True)
            self._pad["rnn"] = type(event.module).__name__

    def _on_op(self, event: OpCall) -> None:
        assert self._pad is not None
        args = event.args
        src = args[0] if args else None
        if event.name == "cat":
            if args and isinstance(args[0], (list, tuple)) and any(self._marked.get(a) is not None for a in args[0]) \
                    and isinstance(event.result, torch.Tensor):
                self._marked.put(event.result, True)
            return
        if not isinstance(src, torch.Tensor) or not src.is_floating_point():
            return
        if self._marked.get(src) is not None:
            if event.name == "linear":
                self._read = {"how": f"h_n of the {self._pad.get('rnn', 'recurrent layer')}", "site": user_site(),
                              "module": event.module}
            elif event.name in _PROPAGATE and isinstance(event.result, torch.Tensor):
                self._marked.put(event.result, True)
            return
        if event.name not in _READ or not src.requires_grad:
            return
        shape = tuple(src.shape)
        axis = self._geometry(shape)
        if axis is None or last_index_dim(event.name, args, shape) != axis:
            return
        written = {"getitem": "[:, -1]" if axis == 1 else "[-1]", "select": f".select({axis}, -1)",
                   "narrow": f".narrow({axis}, -1, 1)"}[event.name]
        self._read = {"how": f"out{written} of a {tuple(shape)} output", "site": user_site(),
                      "module": event.module}

    def _on_loss(self, event: LossCall) -> None:
        pad, read = self._pad, self._read
        if pad is None or read is None or pad["step"] != event.step or not event.grad_enabled:
            return
        inp = event.input
        if inp.dim() == 0 or inp.shape[0] != pad["n"] or inp.dim() > 2 or event.step in self._steps:
            return  # not one prediction per sequence (a per-token loss: a language model)
        self._steps.add(event.step)
        self._hits.append({**pad, **read, "loss": event.name})
        self._read = None

    def _on_end(self, event: RunEnd) -> list[Finding]:
        if len(self._hits) < MIN_STEPS:
            return []
        hit = self._hits[0]
        evidence = {k: hit[k] for k in ("model", "what", "rows", "mean_pad", "min_length", "how", "site", "loss",
                                        "n", "t", "step")}
        evidence["steps"] = len(self._hits)
        return [self.finding(
            f"the per-sequence prediction is read at the last time step ({hit['how']}"
            f"{' at ' + hit['site'] if hit['site'] else ''}) of sequences padded on the right ({hit['what']}): "
            f"{hit['rows']:.0%} of the rows end with padding ({hit['mean_pad']:.1f} pad steps on average), so short "
            f"sequences are classified from the padding, in {len(self._hits)} sampled steps",
            evidence, location=hit["module"] or hit["model"], step=hit["step"])]
