"""regularization: a penalty written into the loss by hand that outweighs the data loss.

``loss = ce + lam * sum(p.pow(2).sum() for p in model.parameters())`` (or ``torch.norm(w)``,
``p.abs().sum()``, a penalty on a few layers only) escapes the ``weight_decay=`` check: the
optimizer sees one gradient. The check reads the autograd graph of the tensor given to
``backward()`` on sampled steps:

* the top-level sum (``AddBackward`` nodes) is split into terms; a term that is the result
  of a loss-function call of this step (a ``loss`` event) is data;
* a term whose whole sub-graph ends in parameters only, through element-wise and reduction
  nodes (no matmul / convolution / embedding node: those would mean it uses the model's
  output, e.g. an activation penalty), is a parameter penalty; its value is the backward
  tensor minus the data losses;
* at the sampled ``step`` pre event, the cosine between the gradient of the penalised
  weights and the penalty's own direction (``w`` for L2, ``sign(w)`` for L1) says whether
  the penalty drives the update.

A warning needs, at >= 3 sampled steps (and most of them), a penalty at least as large as
the data loss while the data loss stays above half its first value (it has not learned),
and one more sign: the penalty >= 10x the data loss (>= 3x at >= 5 samples), the update
aligned with the penalty (cosine >= 0.9), or a data loss that has not fallen 10% over >= 5
samples. A small penalty
(lam=1e-4) is orders of magnitude below the data loss and stays quiet.
"""

from __future__ import annotations

import logging
import statistics
import weakref
from dataclasses import dataclass, field
from typing import Any, Iterable

import torch

from nndoctor.checks import Check, register
from nndoctor.findings import Finding
from nndoctor.monitor.checks._layers import fmt, host_floats
from nndoctor.monitor.events import BackwardCall, LossCall, RunEnd, StepEvent

__all__ = ["LossPenaltyDominates"]

logger = logging.getLogger("nndoctor")

MAX_NODES = 4096  # sub-graph nodes walked per penalty term
MAX_PARAMS = 16  # penalised parameters whose gradient direction is measured
STRONG = 10.0
PERSISTENT = 3.0  # penalty / data loss at >= 5 sampled steps
ALIGNED = 0.9
STUCK = 0.9
LEARNED = 0.5
MIN_HITS = 3
#: autograd nodes that mean a term uses data flowing through the model, not the weights alone
_MODEL_NODES = ("Mm", "Addmm", "Bmm", "Baddbmm", "Matmul", "Convolution", "Conv", "Embedding", "Linear",
                "Rnn", "Lstm", "Gru", "Cudnn", "Mkldnn", "Gather", "Index")


@dataclass
class _Sample:
    step: int
    data: float
    penalty: float
    cos: float | None = None


@dataclass
class _Penalty:
    kind: str  # "L2", "L1" or "parameter"
    params: list[str]
    refs: list[Any] = field(default_factory=list)
    samples: list[_Sample] = field(default_factory=list)
    reported: bool = False


def _terms(root: Any) -> list[Any]:
    """The terms of the top-level sum of the backward tensor's graph."""
    out, stack, seen = [], [root], 0
    while stack and seen < 64:
        node = stack.pop()
        seen += 1
        if type(node).__name__.startswith("AddBackward"):
            stack.extend(fn for fn, _ in node.next_functions if fn is not None)
        else:
            out.append(node)
    return out


def _peel(node: Any) -> tuple[Any, float]:
    """``node`` without the constant scalings on top of it (``loss * 0.5``, ``loss / accum_steps``),
    and their product (1.0 when there is none)."""
    scale = 1.0
    for _ in range(4):
        name = type(node).__name__
        if name not in ("MulBackward0", "DivBackward0"):
            break
        nexts = [fn for fn, _ in node.next_functions]
        if len(nexts) != 2 or nexts[0] is None or nexts[1] is not None:
            break
        other = getattr(node, "_saved_other", None)
        if not isinstance(other, torch.Tensor) or other.numel() != 1:
            break
        value = float(other)
        if value == 0 or value != value:
            break
        scale = scale * value if name == "MulBackward0" else scale / value
        node = nexts[0]
    return node, scale


def _walk(node: Any, data: set[int]) -> tuple[list[torch.Tensor], set[str]] | None:
    """Parameters reached from ``node`` and node kinds, or None when it is not weights-only."""
    leaves: list[torch.Tensor] = []
    kinds: set[str] = set()
    stack, seen = [node], {id(node)}
    while stack:
        cur = stack.pop()
        if id(cur) in data or len(seen) > MAX_NODES:
            return None
        name = type(cur).__name__
        if name == "AccumulateGrad":
            leaves.append(cur.variable)
            continue
        if any(tag in name for tag in _MODEL_NODES):
            return None
        kinds.add(name)
        for fn, _ in cur.next_functions:
            if fn is not None and id(fn) not in seen:
                seen.add(id(fn))
                stack.append(fn)
    return leaves, kinds


def _kind(kinds: set[str]) -> str:
    if any(k.startswith(("AbsBackward", "SgnBackward", "SignBackward")) for k in kinds):
        return "L1"
    if any(k.startswith(("PowBackward", "NormBackward", "LinalgVectorNormBackward", "SqrtBackward"))
           or k == "MulBackward0" for k in kinds):
        return "L2"
    return "parameter"


@register
class LossPenaltyDominates(Check):
    """A hand-written weight penalty in the loss outweighs the data loss, so the model cannot fit."""

    code = "regularization.loss-penalty-too-strong"
    needs = ("loss", "backward", "step", "end")
    step_phases = frozenset({"pre"})
    sampled_only = frozenset({"backward", "step"})

    def __init__(self, state: Any) -> None:
        super().__init__(state)
        self._data: dict[int, tuple[Any, torch.Tensor]] = {}  # grad_fn id -> (node, detached loss)
        self._penalties: dict[tuple[int, ...], _Penalty] = {}
        self._pending: _Penalty | None = None

    def check(self, event: Any) -> Iterable[Finding]:
        if isinstance(event, LossCall):
            self._on_loss(event)
        elif isinstance(event, BackwardCall):
            if event.sampled:
                self._on_backward(event)
            self._data.clear()
        elif isinstance(event, StepEvent):
            if event.phase == "pre" and event.sampled:
                return self._on_step()
        elif isinstance(event, RunEnd):
            return [f for p in self._penalties.values() if (f := self._judge(p, final=True)) is not None]
        return ()

    # ------------------------------------------------------------------ observing
    def _on_loss(self, event: LossCall) -> None:
        res = event.result
        if (isinstance(res, torch.Tensor) and res.dim() == 0 and res.grad_fn is not None
                and len(self._data) < 16):
            self._data[id(res.grad_fn)] = (res.grad_fn, res.detach())

    def _on_backward(self, event: BackwardCall) -> None:
        self._pending = None
        loss, data = event.tensor, self._data
        if not data or loss.dim() != 0 or loss.grad_fn is None or id(loss.grad_fn) in data:
            return
        root, outer = _peel(loss.grad_fn)  # (ce + lam * l2) / accum_steps, loss * 0.5
        terms = [_peel(t) for t in _terms(root)]  # ce / accum + (lam * l2) / accum
        data_terms = [(t, sc) for t, sc in terms if id(t) in data]
        if not data_terms or len(data_terms) == len(terms):
            return
        known = self.state.param_refs
        leaves: list[torch.Tensor] = []
        kinds: set[str] = set()
        for t, _sc in terms:
            if id(t) in data:
                continue
            got = _walk(t, set(data))
            if got is None or not got[0] or not all(id(p) in known for p in got[0]):
                return  # a term that is not a weights-only penalty (or a scaled data loss)
            leaves += got[0]
            kinds |= got[1]
        values = host_floats([loss.detach()] + [data[id(t)][1] for t, _ in data_terms])
        # both in the units of the unscaled loss: the ratio is what matters
        total = values[0] / outer
        data_value = sum(v * sc for v, (_, sc) in zip(values[1:], data_terms))
        key = tuple(sorted({id(p) for p in leaves}))
        pen = self._penalties.get(key)
        if pen is None:
            unique = list(dict.fromkeys(leaves))
            pen = self._penalties[key] = _Penalty(_kind(kinds), [self.state.param_name(p) for p in unique],
                                                  [weakref.ref(p) for p in unique[:MAX_PARAMS]])
        pen.samples.append(_Sample(event.step, data_value, total - data_value))
        del pen.samples[8:-24]
        self._pending = pen

    def _on_step(self) -> list[Finding]:
        pen, self._pending = self._pending, None
        if pen is None:
            return []
        params = [p for r in pen.refs if (p := r()) is not None and p.grad is not None and not p.grad.is_sparse]
        if params:
            dots, gg, ww = [], [], []
            for p in params:
                g = p.grad.detach().float().reshape(-1)
                w = p.detach().float().reshape(-1)
                d = w.sign() if pen.kind == "L1" else w
                dots.append(g @ d)
                gg.append(g @ g)
                ww.append(d @ d)
            dot, g2, w2 = (float(v) for v in host_floats([torch.stack(dots).sum(), torch.stack(gg).sum(),
                                                          torch.stack(ww).sum()]))
            if g2 > 0 and w2 > 0:
                pen.samples[-1].cos = dot / (g2 ** 0.5 * w2 ** 0.5)
        found = self._judge(pen, final=False)
        return [found] if found is not None else []

    # ------------------------------------------------------------------ judging
    def _judge(self, pen: _Penalty, final: bool) -> Finding | None:
        if pen.reported or not pen.samples:
            return None
        first = pen.samples[0].data
        hits = [s for s in pen.samples if s.data > 0 and s.penalty >= s.data and s.data >= LEARNED * first]
        if len(hits) < MIN_HITS or len(hits) < 0.6 * len(pen.samples):
            return None
        ratio = statistics.median(s.penalty / s.data for s in hits)
        cosines = [s.cos for s in hits if s.cos is not None]
        cos = statistics.median(cosines) if cosines else None
        n = len(pen.samples)
        head = statistics.median(s.data for s in pen.samples[:3])
        tail = statistics.median(s.data for s in pen.samples[-3:])
        stuck = n >= 5 and tail >= STUCK * head
        persistent = len(hits) >= 5 and ratio >= PERSISTENT
        if not (ratio >= STRONG or (cos is not None and cos >= ALIGNED) or stuck or persistent):
            return None
        pen.reported = True
        last = hits[-1]
        why = []
        if ratio >= STRONG or persistent:
            why.append(f"{fmt(ratio)}x the data loss (median)")
        if cos is not None and cos >= ALIGNED:
            direction = "sign(w)" if pen.kind == "L1" else "the weights themselves"
            why.append(f"the gradient of the penalised weights points along {direction} (cosine {cos:.2f}): "
                       f"the update mostly shrinks them")
        if stuck:
            why.append(f"the data loss has not fallen ({fmt(head)} -> {fmt(tail)} over {n} sampled steps)")
        shown = ", ".join(pen.params[:4]) + (f" and {len(pen.params) - 4} more" if len(pen.params) > 4 else "")
        evidence = {
            "kind": pen.kind, "penalty": fmt(last.penalty), "data": fmt(last.data), "ratio": ratio,
            "cosine": cos, "penalised_params": pen.params[:12], "steps": [s.step for s in hits][-8:],
            "data_loss_first": head, "data_loss_latest": tail, "factor": fmt(max(10.0, 10 * ratio)),
        }
        article = "a" if pen.kind == "parameter" else "an"
        msg = (f"{article} {pen.kind} penalty written into the loss ({shown}) outweighs the data loss: "
               f"{fmt(last.penalty)} vs {fmt(last.data)} at step {last.step} ({len(hits)} of {n} sampled "
               f"steps); {'; '.join(why)}. The model is pulled towards zero weights instead of fitting the data")
        return self.finding(msg, evidence, location=pen.params[0] if pen.params else "loss",
                            step=hits[0].step)
