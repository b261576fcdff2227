"""numerics: NaN/Inf in the loss, gradients or parameters, traced to the first cause.

Cost model: on CPU the loss is tested every backward (one ``.item()``); on an accelerator
only on sampled steps, otherwise a device-side flag is read every 16 backwards (a NaN seen
that late is reported with its first step from the loss history, and the next steps are
sampled so a recurrence gets traced). Nothing else runs until a non-finite value shows up. Then, once, while the graph still exists,
:func:`trace_nonfinite` walks the loss's autograd graph from the leaves, reads the
tensors its nodes saved (``_saved_self``, ``_saved_other``, ``_saved_result``...) and
finds the first node whose output is non-finite while its inputs are finite: log of 0,
division by 0, exp overflow, sqrt of a negative, NaN in the batch, or parameters that an
earlier optimizer update broke. One finding per root cause; the cascade is not reported.
Sampled steps add evidence: the user's line of each risky op, non-finite gradients, and
parameters that an update turned non-finite.
"""

from __future__ import annotations

import contextlib
import logging
import math
import re
from collections import deque
from dataclasses import dataclass
from typing import Any, Iterable

import torch

from nndoctor.checks import Check, register
from nndoctor.findings import Finding, Severity
from nndoctor.monitor.events import (
    BackwardCall,
    GradContribution,
    ModuleOutput,
    OpCall,
    RunEnd,
    StepEvent,
)
from nndoctor.monitor.observer import user_site
from nndoctor.monitor.tensors import local, local_grad

__all__ = ["NonFinite", "Origin", "trace_nonfinite", "value_evidence"]

logger = logging.getLogger("nndoctor")

#: torch calls that can turn finite inputs into NaN/Inf (forward) or have infinite derivatives
_RISKY_OPS = {"log": "log", "log2": "log", "log10": "log", "log1p": "log1p", "div": "div",
              "true_divide": "div", "truediv": "div", "divide": "div", "idiv": "div", "itruediv": "div",
              "rtruediv": "rdiv", "rdiv": "rdiv", "linalg_vector_norm": "norm", "linalg_norm": "norm",
              "reciprocal": "reciprocal", "rsqrt": "rsqrt", "sqrt": "sqrt", "pow": "pow",
              "rpow": "rpow", "float_power": "pow", "exp": "exp", "exp2": "exp", "expm1": "exp",
              "acos": "acos", "arccos": "acos", "asin": "asin", "arcsin": "asin", "atanh": "atanh",
              "logit": "logit", "norm": "norm", "vector_norm": "norm", "masked_fill": "masked_fill",
              "std": "std", "var": "var"}
#: fixes by the op that produced the first non-finite value
_OP_FIX = {
    "log": "Guard the log: torch.log(x.clamp_min(1e-8)); for probabilities compute log-probabilities "
           "directly (F.log_softmax, F.logsigmoid, or a loss that takes logits)",
    "log1p": "Keep the argument of log1p above -1 (clamp it)",
    "div": "Guard the denominator: x / (d + 1e-8) or x / d.clamp_min(1e-8) (for a std: std + eps)",
    "rdiv": "Guard the denominator: c / (x + 1e-8) or c / x.clamp_min(1e-8)",
    "reciprocal": "Guard the denominator: (x + 1e-8).reciprocal()",
    "rsqrt": "Keep the argument positive: torch.rsqrt(x.clamp_min(1e-8))",
    "sqrt": "Keep the argument non-negative: torch.sqrt(x.clamp_min(0) + 1e-8)",
    "pow": "Keep the base positive for fractional powers (x.clamp_min(1e-8) ** p) and non-zero for negative powers",
    "exp": "Avoid exp overflow: subtract the max first (logsumexp trick), clamp the argument (x.clamp(max=80)) "
           "or use a stable built-in (torch.logsumexp, F.softplus, F.log_softmax, BCEWithLogitsLoss)",
    "acos": "Clamp the argument into [-1+1e-6, 1-1e-6] before acos/asin",
    "asin": "Clamp the argument into [-1+1e-6, 1-1e-6] before acos/asin",
    "atanh": "Clamp the argument into (-1, 1) before atanh",
    "masked_fill": "Fill with a large finite negative value (torch.finfo(x.dtype).min) instead of -inf, "
                   "and make sure no row is fully masked before the softmax",
    "std": "Use correction=0 (unbiased=False), or normalise over a dimension with more than one value",
    "var": "Use correction=0 (unbiased=False), or normalise over a dimension with more than one value",
    "nllloss": "Skip batches whose targets are all ignore_index (if (y != ignore).any(): ...), "
               "or use reduction='sum' divided by max(count, 1)",
    "empty": "Skip the loss when the selection is empty (if mask.any(): ...), or divide by max(count, 1)",
    "constant": "Find where that constant comes from (float('nan'), math.inf, 0/0 or log(0) computed in Python "
                "or numpy, a NaN hyperparameter or loss weight) and make it finite; assert math.isfinite(c) "
                "before using it",
}
#: arithmetic whose non-finite constant operand (a Python number, a one-element tensor) is a cause
_CONST_OPS = {"mul": "multiplied into", "rmul": "multiplied into", "imul": "multiplied into",
              "multiply": "multiplied into", "add": "added to", "radd": "added to", "iadd": "added to",
              "sub": "subtracted from", "rsub": "subtracted from", "isub": "subtracted from"}
_NODE_VERB = {"mul": "multiplied into", "add": "added to", "sub": "subtracted from", "rsub": "subtracted from"}
_no_torch_function = getattr(torch._C, "DisableTorchFunction", contextlib.nullcontext)
_function_mode_on = getattr(torch._C, "_is_torch_function_mode_enabled", lambda: True)
_DIVERGED_RATIO = 100.0  # finite losses grew this much above their best before turning non-finite
_FLAG_EVERY = 16  # accelerators: read the device-side non-finite flag every this many backwards


# ---------------------------------------------------------------------- graph tracing
#: autograd ops that turn finite inputs into NaN/Inf for some inputs (checked with value_evidence)
_DOMAIN = frozenset({"log", "log1p", "div", "rdiv", "reciprocal", "rsqrt", "sqrt", "pow", "exp",
                     "acos", "asin", "atanh", "logit", "masked_fill", "std", "var", "nllloss"})
#: autograd ops that cannot make a non-finite value out of finite inputs
_SAFE = frozenset({"relu", "sigmoid", "tanh", "softmax", "logsoftmax", "gelu", "silu", "elu", "leakyrelu",
                   "hardtanh", "t", "view", "reshapealias", "unsafeview", "unsqueeze", "squeeze", "expand",
                   "permute", "transpose", "clone", "slice", "select", "index", "cat", "stack", "split",
                   "splitwithsizes", "unbind", "asstrided", "alias", "narrow", "nativedropout", "clamp",
                   "clampmin", "clampmax", "abs", "neg", "maxpool2dwithindices", "tocopy", "logsigmoid",
                   "softplus", "accumulategrad"})
_NODE_CANON = {"log2": "log", "log10": "log", "exp2": "exp", "expm1": "exp", "maskedfill": "masked_fill",
               "linalgvectornorm": "norm"}
_MAX_NODES = 20000


@dataclass
class Origin:
    """Where a non-finite value was first made, as far as the autograd graph tells."""

    kind: str  # "op" (a node made it), "data" (a saved tensor without grad history), "param"
    op: str = ""  # canonical op name ("log", "div") or the node's name
    node: str = ""  # autograd node class, e.g. "LogBackward0"
    evidence: str = ""  # why that node made NaN/Inf ("got 3 zeros (log(0) = -inf)"); "" if unsure
    role: str = ""  # for "data": which saved input ("target of MseLossBackward0")
    module: str = ""  # the module whose parameters feed the node
    params: tuple[str, ...] = ()
    param: str = ""  # for "param": the parameter's name
    constant: str = ""  # for "data": the value when the non-finite input is a one-element constant
    underflow: str = ""  # for log(0): the op whose output underflowed to the zeros ("softmax", "sigmoid", "exp")


def nonfinite(t: Any) -> bool:
    """True if the floating tensor ``t`` holds a NaN or Inf (one host sync)."""
    if not isinstance(t, torch.Tensor) or not (t.is_floating_point() or t.is_complex()) or t.numel() == 0:
        return False
    if t.is_cpu and t.numel() == 1:
        value = t.item()
        return not math.isfinite(abs(value))
    return not bool(torch.isfinite(t.detach()).all())


def _all_finite(tensors: list[torch.Tensor]) -> bool:
    """Whether every tensor is finite: one fused norm per device, one host read (a finite
    tensor whose norm overflows reads as non-finite; callers then look tensor by tensor)."""
    try:
        norms = torch._foreach_norm([t.detach() for t in tensors])
    except (RuntimeError, TypeError, AttributeError):  # mixed devices/dtypes, an old torch
        return False
    by_device: dict[Any, list[torch.Tensor]] = {}
    for n in norms:
        by_device.setdefault(n.device, []).append(n.float().reshape(()))
    return all(bool(torch.isfinite(torch.stack(ns)).all()) for ns in by_device.values())


def _bad_grads(params: list[torch.Tensor], state: Any) -> dict[str, str]:
    """Names of parameters whose ``.grad`` holds NaN/Inf, with the counts."""
    out = {}
    for p in params:
        g = local_grad(p)  # (sharded parameters: this rank's shard)
        if g is None or g.is_sparse or not g.is_floating_point() or not nonfinite(g):
            continue
        n_nan, n_inf = int(torch.isnan(g).sum()), int(torch.isinf(g).sum())
        out[state.param_name(p)] = f"{n_nan} NaN, {n_inf} Inf"
    return out


def _count(mask: torch.Tensor) -> int:
    return int(mask.sum())


def value_evidence(op: str, vals: dict[str, Any]) -> str:
    """Why ``op`` made a non-finite value from these inputs (``self``, ``other``, ``exponent``,
    ``result``...), or "" when its inputs do not explain it."""
    x, res = vals.get("self"), vals.get("result")
    xt = x.detach() if isinstance(x, torch.Tensor) and x.is_floating_point() and x.numel() else None
    rt = res.detach() if isinstance(res, torch.Tensor) and res.is_floating_point() and res.numel() else None
    if op == "log" and xt is not None:
        zeros, neg = _count(xt == 0), _count(xt < 0)
        if zeros or neg:
            parts = ([f"{zeros} exact zero(s)"] if zeros else []) + ([f"{neg} negative values"] if neg else [])
            why = ", ".join((["log(0) = -inf"] if zeros else []) + (["log(x<0) = NaN"] if neg else []))
            return f"got {' and '.join(parts)} of {xt.numel()} ({why})"
    if op == "log1p" and xt is not None and _count(xt <= -1):
        return f"got {_count(xt <= -1)} values <= -1 (log1p(-1) = -inf)"
    if op in ("div", "rdiv"):
        d = vals.get("other")
        if isinstance(d, torch.Tensor) and d.numel() and _count(d == 0):
            return f"got a denominator with {_count(d == 0)} zero(s) of {d.numel()} (x/0 = inf, 0/0 = NaN)"
        if isinstance(d, (int, float)) and d == 0:
            return "divides by the constant 0"
    if op in ("reciprocal", "rsqrt", "sqrt") and rt is not None and not bool(torch.isfinite(rt).all()):
        n_nan, n_inf = _count(torch.isnan(rt)), _count(torch.isinf(rt))
        parts = ([f"{n_inf} zeros (1/0 = inf)"] if n_inf else []) + ([f"{n_nan} negative values (NaN)"] if n_nan else [])
        return "got " + " and ".join(parts)
    if op == "pow" and xt is not None:
        e = vals.get("exponent")
        if isinstance(e, (int, float)):
            if e != int(e) and _count(xt < 0):
                return f"raised {_count(xt < 0)} negative values to the fractional power {e} (NaN)"
            if e < 0 and _count(xt == 0):
                return f"raised {_count(xt == 0)} zeros to the negative power {e} (inf)"
    if op == "exp" and rt is not None and _count(torch.isinf(rt)):
        return f"overflowed: {_count(torch.isinf(rt))} inputs above ~{math.log(torch.finfo(rt.dtype).max):.1f}"
    if op in ("acos", "asin") and xt is not None and _count(xt.abs() > 1):
        return f"got {_count(xt.abs() > 1)} values outside [-1, 1] (NaN)"
    if op == "atanh" and xt is not None and _count(xt.abs() >= 1):
        return f"got {_count(xt.abs() >= 1)} values outside (-1, 1)"
    if op == "logit" and xt is not None and _count((xt <= 0) | (xt >= 1)):
        return f"got {_count((xt <= 0) | (xt >= 1))} values outside (0, 1)"
    if op == "masked_fill":
        value = vals.get("value")
        if isinstance(value, (int, float)) and math.isfinite(value):
            return ""
        mask = vals.get("mask")
        n = _count(mask) if isinstance(mask, torch.Tensor) and mask.dtype == torch.bool else "the masked"
        fill = f"{value}" if value is not None else "-inf"
        return (f"filled {n} positions with {fill}; a row masked everywhere then makes softmax 0/0 = NaN")
    if op in ("std", "var") and rt is not None and not bool(torch.isfinite(rt).all()):
        return ("reduced groups of a single value with Bessel's correction (n - 1 = 0), which is NaN: "
                "use correction=0 (unbiased=False) or more than one sample")
    if op == "nllloss" and isinstance(vals.get("total_weight"), torch.Tensor) and float(vals["total_weight"]) == 0:
        return "got only targets equal to ignore_index (or of weight 0): the mean over 0 targets is NaN"
    return _generic_evidence(vals)


def _generic_evidence(vals: dict[str, Any]) -> str:
    if vals.get("self_sym_numel") == 0 or any(isinstance(v, torch.Tensor) and v.numel() == 0 for v in vals.values()):
        return "reduced a tensor with 0 elements (the mean of nothing is NaN)"
    for v in vals.values():
        if isinstance(v, torch.Tensor) and v.is_floating_point() and v.numel() and bool(torch.isfinite(v).all()):
            big, limit = float(v.detach().abs().max()), torch.finfo(v.dtype).max
            if big >= limit ** 0.5:  # a product or square of such values overflows this dtype
                return f"overflowed: its inputs reach {big:.3g} ({v.dtype} tops out at {limit:.3g})"
    return ""


def _node_op(node: Any) -> str:
    base = re.sub(r"Backward\d*$", "", type(node).__name__).lower()
    return _NODE_CANON.get(base, base)


_ATTRS: dict[type, list[str]] = {}


def _saved(node: Any) -> dict[str, Any]:
    """The tensors and scalars a node saved for backward, by role (``self``, ``other``, ``result``)."""
    if type(node).__name__ == "AccumulateGrad":
        return {"variable": node.variable}
    names = _ATTRS.get(type(node))
    if names is None:
        names = [a for a in dir(node) if a.startswith("_saved_")]
        _ATTRS[type(node)] = names
    out: dict[str, Any] = {}
    for attr in names:
        try:
            value = getattr(node, attr)
        except Exception:  # freed, or a type torch cannot unpack here
            continue
        if isinstance(value, (list, tuple)) and value and isinstance(value[0], torch.Tensor):
            for i, v in enumerate(value):
                out[f"{attr[7:]}[{i}]"] = v
        elif value is not None:
            out[attr[7:]] = value
    return out


def _children(node: Any) -> list[Any]:
    return [c for c, _ in getattr(node, "next_functions", ()) if c is not None]


def _nearest_params(node: Any, param_names: dict[int, str], limit: int = 4000) -> tuple[str, ...]:
    seen, frontier, n = {node}, [node], 0
    while frontier and n < limit:
        found = []
        nxt = []
        for f in frontier:
            n += 1
            if type(f).__name__ == "AccumulateGrad":
                found.append(param_names.get(id(f.variable), f"<parameter {tuple(f.variable.shape)}>"))
            for c in _children(f):
                if c not in seen:
                    seen.add(c)
                    nxt.append(c)
        if found:
            return tuple(found)
        frontier = nxt
    return ()


def trace_nonfinite(root: Any, param_names: dict[int, str]) -> Origin | None:
    """Walk the graph below ``root`` (a loss's ``grad_fn``, before backward frees it) and find the
    node that first made a non-finite value: one whose saved inputs are finite but whose output is
    not. Returns None when the graph holds nothing non-finite."""
    kids: dict[Any, list[Any]] = {root: _children(root)}
    order: list[Any] = []  # post-order: every node after the nodes below it
    stack = [(root, iter(kids[root]))]
    while stack:
        node, it = stack[-1]
        for c in it:
            if c not in kids:
                kids[c] = _children(c) if len(kids) < _MAX_NODES else []
                stack.append((c, iter(kids[c])))
                break
        else:
            stack.pop()
            order.append(node)
    cache: dict[int, bool] = {}

    def bad_of(node: Any) -> list[tuple[str, torch.Tensor]]:
        out = []
        for key, v in _saved(node).items():
            if isinstance(v, torch.Tensor):
                flag = cache.get(id(v))
                if flag is None:
                    flag = cache[id(v)] = nonfinite(v)
                if flag:
                    out.append((key, v))
        return out

    bad = {n: bad_of(n) for n in order}
    below: dict[Any, bool] = {}
    for n in order:
        below[n] = any(bool(bad[c]) or below[c] for c in kids[n])
    nodes = order[::-1]  # nearest the loss first
    frontier = [n for n in nodes if bad[n] and not below[n]]
    best: Origin | None = None
    for node in frontier:
        origin = _explain(node, bad[node], param_names)
        if origin is not None and (best is None or _rank(origin) > _rank(best)):
            best = origin
    if best is None or _rank(best) < 2:
        found = _search([root], param_names)
        if found is not None and (best is None or _rank(found) > _rank(best)):
            best = found
    return best


def _rank(o: Origin) -> int:
    return {"param": 4, "data": 3}.get(o.kind, 2 if o.evidence else 1)


def _explain(node: Any, bad: list[tuple[str, torch.Tensor]], param_names: dict[int, str]) -> Origin | None:
    name = type(node).__name__
    if name == "AccumulateGrad":
        return Origin("param", node=name, param=param_names.get(id(node.variable), "?"))
    op = _node_op(node)
    inputs = [(k, v) for k, v in bad if k != "result"]
    if not inputs:  # only the output is non-finite: this node made it, unless it cannot
        if op in _SAFE:
            return _search(_children(node), param_names)
        evidence = value_evidence(op, _saved(node)) or "made NaN/Inf from finite inputs"
        return _origin(node, op, evidence, param_names)
    for key, v in inputs:
        if v.grad_fn is None:
            if v.requires_grad:
                return Origin("param", node=name, param=param_names.get(id(v), "?"))
            params = _nearest_params(node, param_names)
            constant = str(float(v.detach().reshape(()).float())) if v.numel() == 1 else ""
            return Origin("data", op=_node_op(node), node=name, role=f"{key} of {name}", params=params,
                          module=params[0].rsplit(".", 1)[0] if params else "", constant=constant)
    return _search([v.grad_fn for _, v in inputs], param_names)


_PASS = frozenset({"t", "view", "reshapealias", "unsafeview", "unsqueeze", "squeeze", "expand", "clone",
                   "select", "index", "slice", "rsub", "sub", "add", "mul", "tocopy"})
_UNDERFLOW = {"exp": "exp underflowed to 0: use the exponent itself, log(exp(z)) = z",
              "sigmoid": "sigmoid saturated to exactly 0 or 1: use F.logsigmoid or BCEWithLogitsLoss",
              "softmax": "softmax underflowed to 0: use F.log_softmax / F.cross_entropy on the logits"}


def _producer(node: Any) -> str:
    """For log(0): which op made the zeros (exp, sigmoid, softmax underflow), or ""."""
    todo, seen = _children(node), 0
    while todo and seen < 12:
        child = todo.pop(0)
        seen += 1
        op = _node_op(child)
        if op in _UNDERFLOW:
            return op
        if op in _PASS:
            todo.extend(_children(child))
    return ""


def _origin(node: Any, op: str, evidence: str, param_names: dict[int, str]) -> Origin:
    underflow = _producer(node) if op == "log" and "zero" in evidence else ""
    if underflow:
        evidence += f"; the zeros come from {_UNDERFLOW[underflow]}"
    params = _nearest_params(node, param_names)
    return Origin("op", op=op, node=type(node).__name__, evidence=evidence, params=params,
                  module=params[0].rsplit(".", 1)[0] if params else "", underflow=underflow)


def _search(starts: list[Any], param_names: dict[int, str]) -> Origin | None:
    """Breadth-first below ``starts`` (whose saved values are finite) for the op that made NaN/Inf."""
    queue, seen = deque(starts), set(starts)
    fallback: tuple[Any, str, str] | None = None
    n = 0
    while queue and n < _MAX_NODES:
        node = queue.popleft()
        n += 1
        name = type(node).__name__
        if name == "AccumulateGrad":
            if nonfinite(node.variable):
                return Origin("param", node=name, param=param_names.get(id(node.variable), "?"))
        else:
            op = _node_op(node)
            if op in _DOMAIN or op not in _SAFE:
                evidence = value_evidence(op, _saved(node))
                if evidence and op in _DOMAIN:
                    return _origin(node, op, evidence, param_names)
                if fallback is None or (evidence and not fallback[2]):
                    fallback = (node, op, evidence)
        for c in _children(node):
            if c not in seen:
                seen.add(c)
                queue.append(c)
    if fallback is None:
        return None
    return _origin(fallback[0], fallback[1], fallback[2], param_names)


def _fmt(x: float) -> str:
    return f"{x:.4g}"


@register
class NonFinite(Check):
    """NaN/Inf in the loss, traced to its first cause (forward op, inputs, update or init)."""

    code = "numerics.nonfinite-forward"
    needs = ("backward", "loss_check", "grad", "step", "op", "model_input", "module_output", "end")
    # on unsampled steps the observer itself reads a CPU loss and sends "loss_check" only when it is
    # non-finite (on accelerators: always, for the device-side flag); the rest is sampled
    sampled_only = frozenset({"backward", "model_input", "step"})
    step_phases = frozenset({"post"})
    ops = frozenset(_RISKY_OPS) | frozenset(_CONST_OPS)
    extra_codes = (
        "numerics.nonfinite-input",
        "numerics.nonfinite-update",
        "numerics.nonfinite-gradient",
        "numerics.nonfinite-init",
        "numerics.nonfinite-loss",
    )

    def __init__(self, state: Any) -> None:
        super().__init__(state)
        self._done = False
        self._pending: dict[str, Any] | None = None
        self._transient = 0
        # the latest training forward's (model name, args, kwargs): held only until that step's
        # backward reads them (the user's loop holds the same tensors meanwhile)
        self._last_input: tuple[str, tuple[Any, ...], dict[str, Any]] | None = None
        self._sites: dict[tuple[str, str], list[str]] = {}
        self._site_calls: dict[tuple[str, str], int] = {}
        self._op_hits: deque[dict[str, Any]] = deque(maxlen=8)
        self._module_hit: dict[str, Any] | None = None
        self._grad_bad: dict[str, str] = {}
        self._suspect = False  # a non-finite value was seen: module outputs and gradients get checked
        self._loss_bad_index = -1
        self._flag: torch.Tensor | None = None
        self._unchecked: list[int] = []
        self._late: tuple[int, int] | None = None

    # ------------------------------------------------------------------ dispatch
    def check(self, event: Any) -> Iterable[Finding]:
        kind = event.kind
        if self._done and kind != "end":
            return ()
        if kind == "model_input":  # every forward: remember the inputs, nothing else (cheap)
            if event.training and event.grad_enabled:
                self._last_input = (event.name, event.args, event.kwargs)
            return ()
        if kind == "step" and (event.phase == "pre" or (not event.sampled and self._pending is None
                                                        and not self._grad_bad)):
            return ()  # the unsampled post-step has nothing to read
        handler = self._on_backward if kind == "loss_check" else getattr(self, f"_on_{kind}")
        if not _function_mode_on():  # unsampled steps: no function mode to step around
            return handler(event) or ()
        with _no_torch_function():  # our own tensor reads skip the observer's function mode
            return handler(event) or ()

    def _on_backward(self, ev: BackwardCall) -> list[Finding] | None:
        t = ev.tensor
        if not (t.is_floating_point() or t.is_complex()):
            return None
        if not ev.sampled and not self._sync_each_step(t):
            return self._accumulate(t, ev.step)
        bad = nonfinite(t)
        out: list[Finding] = []
        if self._pending is not None and self._after_pending(ev):
            out += self._resolve(persistent=bad)
            if self._done:
                return out
        if bad:
            self._suspect = True
        if bad and self._pending is None:
            self._loss_bad_index = ev.index
            with torch.no_grad():
                self._pending = self._diagnose_loss(t, ev)
                self._pending["params_before"] = self._fingerprint()
            if not ev.sampled and self.state.observer is not None:
                self.state.observer.boost(2)  # the next steps are watched: the verdict comes at once
        return out

    def _sync_each_step(self, t: torch.Tensor) -> bool:
        """CPU: reading one scalar per step is cheap. Accelerators: no host sync on unsampled steps."""
        return t.is_cpu

    def _accumulate(self, t: torch.Tensor, step: int) -> list[Finding] | None:
        flag = ~torch.isfinite(t.detach()).all()
        self._flag = flag if self._flag is None else (self._flag | flag)
        self._unchecked.append(step)
        if len(self._unchecked) >= _FLAG_EVERY:
            return self._read_flag()
        return None

    def _read_flag(self) -> list[Finding] | None:
        if self._flag is None:
            return None
        bad, steps = bool(self._flag.item()), self._unchecked
        self._flag, self._unchecked = None, []
        self._suspect = self._suspect or bad
        if not bad or self._late is not None:
            return None
        self._late = (steps[0], steps[-1])
        bad_params = self._bad_params()
        if bad_params:  # too late to trace: the graph is gone and the NaN has spread
            first = self.state.losses.first_nonfinite()
            step = first[0] if first else steps[0]
            diverged = self._diverged()
            listing = ", ".join(n for n, _ in bad_params[:3])
            msg = (f"the loss became {first[1] if first else 'NaN/Inf'} at step {step} and the parameters are "
                   f"now NaN/Inf ({listing}); on an accelerator nndoctor reads the loss in batches, so it saw "
                   f"this only at step {steps[-1]}, after the cause was gone"
                   + (f"; the loss diverged first ({diverged}): the learning rate is too high" if diverged else ""))
            evidence = {"first_nonfinite_step": step, "seen_at": steps[-1], "params": [n for n, _ in bad_params[:8]],
                        "diverged": diverged, "lr": self._lr(),
                        "cause_fix": f"Rerun the steps around {step} on CPU under nndoctor: it then checks every "
                                     "step and names the op, the input or the update that made the NaN."}
            diag = {"code": "numerics.nonfinite-loss", "message": msg, "evidence": evidence, "location": "loss",
                    "step": step, "severity": Severity.WARNING if diverged else Severity.ERROR}
            return [self._emit(diag, persistent=True)]
        if self.state.observer is not None:
            self.state.observer.boost(8)  # look closely: the next non-finite loss gets traced
        return None

    def _after_pending(self, ev: BackwardCall) -> bool:
        pend = self._pending
        assert pend is not None
        return ev.step > pend["step"] if self.state.optimizers else ev.index > pend["index"]

    def _on_grad(self, ev: GradContribution) -> None:
        if not self._suspect:  # healthy so far: the post-step check reads all gradients at once
            return None
        if self._pending is not None or self._loss_bad_index == self.state.backward_calls - 1:
            return None
        g = None if ev.grad is None else local(ev.grad)
        if g is None or g.is_sparse or not g.is_floating_point():
            return None
        if nonfinite(g):
            n_nan = int(torch.isnan(g).sum())
            self._grad_bad.setdefault(ev.name, f"{n_nan} NaN, {g.numel() - n_nan - int(torch.isfinite(g).sum())} Inf")
        return None

    def _on_step(self, ev: StepEvent) -> list[Finding] | None:
        if ev.phase != "post":
            return None
        if self._pending is not None:
            if self._bad_params(_params_of(ev.optimizer)):
                return self._resolve(persistent=True)
            if self._params_changed(self._pending):
                # a real update with finite gradients: whether training recovers is told by the next loss
                self._pending["updated"] = True
                return None
            return self._resolve(persistent=False)
        out = None
        if ev.sampled:
            params = _params_of(ev.optimizer)
            bad = self._bad_params(params)
            if bad:
                self._suspect = True
                if not self._grad_bad:  # which gradients were non-finite (still in .grad after the step)
                    self._grad_bad.update(_bad_grads(params, self.state))
                out = [self._emit(self._diagnose_update(bad, ev.step, ev.optimizer), persistent=True)]
        if self._unchecked and ev.sampled:
            out = (out or []) + (self._read_flag() or [])
        if self._grad_bad:
            self._grad_bad.clear()
        return out

    def _on_op(self, ev: OpCall) -> None:
        if ev.name in _CONST_OPS:
            return self._on_constant_op(ev)
        canon = _RISKY_OPS.get(ev.name.rstrip("_"))
        if canon is None or not isinstance(ev.result, torch.Tensor) or not ev.result.requires_grad:
            return None
        key = (canon, ev.module)
        sites = self._sites.setdefault(key, [])
        seen = self._site_calls.get(key, 0)
        if seen < 8 and len(sites) < 3:  # the user's line of this op (a few calls suffice)
            self._site_calls[key] = seen + 1
            site = user_site()
            if site and site not in sites:
                sites.append(site)
        vals = _op_values(canon, ev.args, ev.result)
        detail, kind = None, "nonfinite"
        if nonfinite(ev.result) and not any(nonfinite(v) for k, v in vals.items() if k != "result"):
            detail = value_evidence(canon, vals) or "made NaN/Inf from finite inputs"
        elif canon in ("sqrt", "pow", "norm"):
            detail, kind = _infinite_derivative(canon, vals), "derivative"
        if detail:
            self._op_hits.append({"step": ev.step, "op": canon, "module": ev.module,
                                  "site": user_site(), "detail": detail, "kind": kind})
        return None

    def _on_constant_op(self, ev: OpCall) -> None:
        """``loss * float("nan")``: a non-finite constant operand, remembered with the user's line."""
        if not isinstance(ev.result, torch.Tensor) or not ev.result.requires_grad:
            return None
        value = None
        for a in ev.args[:2]:
            if isinstance(a, (int, float)) and not isinstance(a, bool) and not math.isfinite(a):
                value = float(a)
            elif (isinstance(a, torch.Tensor) and a.numel() == 1 and a.is_cpu and not a.requires_grad
                  and a.is_floating_point() and not math.isfinite(float(a.reshape(())))):
                value = float(a.reshape(()))
        if value is None:
            return None
        others = [a for a in ev.args[:2] if isinstance(a, torch.Tensor) and a.numel() != 1]
        if any(nonfinite(a) for a in others):
            return None  # the other operand was already non-finite: not the first cause
        self._op_hits.append({"step": ev.step, "op": ev.name.lstrip("ri").rstrip("_"), "module": ev.module,
                              "site": user_site(), "detail": str(value), "kind": "constant",
                              "verb": _CONST_OPS[ev.name]})
        return None

    def _on_module_output(self, ev: ModuleOutput) -> None:
        if not self._suspect:  # the graph walk finds the first op; modules are checked once suspicious
            return None
        hit = self._module_hit
        if hit is not None and hit["step"] == ev.step or not ev.grad_enabled:
            return None
        out = ev.output
        if not isinstance(out, torch.Tensor) or not out.is_floating_point() or not nonfinite(out):
            return None
        if any(isinstance(a, torch.Tensor) and a.is_floating_point() and nonfinite(a) for a in ev.inputs):
            return None
        self._module_hit = {"step": ev.step, "module": ev.name}
        return None

    def _on_end(self, ev: RunEnd) -> list[Finding] | None:
        out: list[Finding] = []
        self._last_input = None
        if self._unchecked and not self._done:
            out += self._read_flag() or []
        if self._pending is not None:
            out += self._resolve(persistent=True)
        elif self._late is not None and not self._done and not self._transient:
            a, b = self._late
            ev_ = {"steps": f"{a}-{b}", "cause_fix": "Rerun on CPU or with a smaller model to trace it; "
                   "the check reads the loss in batches on an accelerator."}
            out.append(self.finding(f"the loss was NaN/Inf at least once between steps {a} and {b}, "
                                    "then finite again (the step was skipped or the value recovered)",
                                    ev_, location="loss", code="numerics.nonfinite-loss",
                                    severity=Severity.WARNING, step=a))
        return out

    # ------------------------------------------------------------------ diagnosis
    def _resolve(self, persistent: bool) -> list[Finding]:
        pend, self._pending = self._pending, None
        if pend is None:
            return []
        if not persistent:
            self._transient += 1
            if self._transient > 1:
                return []
        return [self._emit(pend, persistent=persistent)]

    def _emit(self, diag: dict[str, Any], persistent: bool) -> Finding:
        severity = diag.get("severity", Severity.ERROR)
        message = diag["message"]
        if persistent:
            self._done = True
            self.retire()  # (its verdict is given: nothing more to hear but the end)
        else:
            severity = Severity.WARNING
            if diag.get("updated") or self._params_changed(diag):
                message += ("; the optimizer still updated the parameters with finite gradients and they stayed "
                            "finite, so training went on (the loss value of that step was unusable)")
            else:
                message += "; the parameters stayed finite (that update was skipped), so training went on"
        return self.finding(message, diag["evidence"], location=diag["location"], code=diag["code"],
                            severity=severity, step=diag["step"])

    def _diagnose_loss(self, t: torch.Tensor, ev: BackwardCall) -> dict[str, Any]:
        step = ev.step
        value = _scalar(t)
        base = {"step": step, "index": ev.index}
        what = f"the loss became {value} at step {step}"
        bad_params = self._bad_params()
        if bad_params:
            return {**base, **self._diagnose_update(bad_params, step, None, at_update=False)}
        origin = trace_nonfinite(t.grad_fn, self.state.param_names) if t.grad_fn is not None else None
        if origin is not None and origin.kind == "param":
            return {**base, **self._diagnose_update([(origin.param, "non-finite")], step, None, at_update=False)}
        if origin is not None and origin.kind == "op" and origin.evidence and origin.op in _DOMAIN:
            return {**base, **self._forward(origin, what, step)}
        hit = next((h for h in self._op_hits if h["step"] == step and h["kind"] == "nonfinite"), None)
        bad_inputs = self._bad_inputs()
        const_hit = next((h for h in self._op_hits if h["step"] == step and h["kind"] == "constant"), None)
        if not bad_inputs and (const_hit is not None or (origin is not None and origin.kind == "data"
                                                         and origin.constant)):
            return {**base, **self._constant(origin, const_hit, what, step)}
        if hit is not None and not bad_inputs:
            found = Origin("op", op=hit["op"], node="", evidence=hit["detail"], module=hit["module"])
            return {**base, **self._forward(found, what, step, inside=True)}
        if bad_inputs or (origin is not None and origin.kind == "data"):
            target = not bad_inputs and origin is not None and "target" in origin.role
            where = bad_inputs[0] if bad_inputs else (
                f"the targets ({origin.role})" if target else f"{origin.role} in {origin.module or 'the model'}"
            )  # type: ignore[union-attr]
            msg = f"{what} because the batch contains NaN/Inf: {where}"
            evidence = {"where": where, "loss": value}
            return {**base, "code": "numerics.nonfinite-input", "message": msg, "evidence": evidence,
                    "location": "targets" if target else "inputs"}
        diverged = self._diverged()
        if origin is not None and origin.kind == "op" and not diverged:
            return {**base, **self._forward(origin, what, step)}
        cause = (f"after the loss diverged ({diverged}): the learning rate is too high"
                 if diverged else "and nndoctor could not localise the op that made it")
        evidence = {"loss": value, "diverged": diverged or "", "lr": self._lr(),
                    "op": origin.node if origin else "", "module": origin.module if origin else "",
                    "cause_fix": f"Lower the learning rate (now {self._lr()}) by 10x and add gradient clipping."
                    if diverged else "Check exp/log/div/pow in the model and the loss for overflow."}
        return {**base, "code": "numerics.nonfinite-loss", "message": f"{what} {cause}",
                "evidence": evidence, "location": "loss",
                "severity": Severity.WARNING if diverged else Severity.ERROR}

    def _constant(self, origin: Origin | None, hit: dict[str, Any] | None, what: str, step: int) -> dict[str, Any]:
        """A NaN/Inf number written into the computation (``loss * float("nan")``), not the data."""
        if hit is not None:
            value, verb, site = hit["detail"], hit["verb"], hit["site"] or ""
            place = f"inside {hit['module']}" if hit["module"] else "outside the model"
            module, op = hit["module"] or "the loss computation", hit["op"]
        else:
            assert origin is not None
            value, verb, site = origin.constant, _NODE_VERB.get(origin.op, f"used by {origin.node} in"), ""
            place = (f"on values computed from {origin.module}" if origin.module else "on values computed "
                     "from the data") + f" (autograd node {origin.node})"
            module, op = origin.module or "the loss computation", origin.op
        msg = (f"{what}: a non-finite constant ({value}) is {verb} the computation"
               + (f" at {site}" if site else "") + f", {place}; the batch and the parameters were finite")
        evidence = {"op": op, "node": origin.node if origin is not None else "", "detail": f"constant {value}",
                    "module": module, "site": site or "the line that computes it", "constant": value,
                    "op_fix": _OP_FIX["constant"]}
        return {"code": "numerics.nonfinite-forward", "message": msg, "evidence": evidence,
                "location": site or module, "step": step}

    def _forward(self, origin: Origin, what: str, step: int, inside: bool = False) -> dict[str, Any]:
        near = [s for (op, mod), ss in self._sites.items() if op == origin.op and mod
                and origin.module.startswith(mod) for s in ss]
        sites = near or [s for (op, _), ss in self._sites.items() if op == origin.op for s in ss]
        hit = next((h for h in self._op_hits if h["step"] == step and h["op"] == origin.op), None)
        if hit is not None and hit["site"]:
            sites = [hit["site"]]
        site = ", ".join(sites[:3]) or "the line that calls it"
        if inside:
            place = f"inside {origin.module}" if origin.module else "outside the model"
        else:
            place = f"on the output of {origin.module}" if origin.module else "on values computed from the data"
        domain = origin.op in _DOMAIN or origin.op == "masked_fill"
        op_txt = f"torch.{origin.op}" if domain else (origin.node or origin.op)
        msg = f"{what}: {op_txt} {origin.evidence}, {place}"
        if sites:
            msg += f" [{site}]"
        if self._module_hit is not None and self._module_hit["step"] == step:
            msg += f"; first module with a non-finite output: {self._module_hit['module']}"
        fix_key = "empty" if "0 elements" in (origin.evidence or "") else origin.op
        evidence = {"op": op_txt, "node": origin.node, "detail": origin.evidence, "module": origin.module,
                    "site": site, "params_below": list(origin.params[:3]),
                    "op_fix": _OP_FIX.get(fix_key, "Rescale or clamp the values that reach this op "
                                                   "(normalise the inputs, lower the learning rate)")}
        if origin.underflow:
            evidence["underflow_of"] = origin.underflow  # log of an underflowed value: a bug of its own
        return {"code": "numerics.nonfinite-forward", "message": msg, "evidence": evidence,
                "location": origin.module or op_txt, "step": step}

    def _diagnose_update(self, bad: list[tuple[str, str]], step: int,
                         optimizer: torch.optim.Optimizer | None, at_update: bool = True) -> dict[str, Any]:
        names = [n for n, _ in bad]
        steps_done = sum(info.steps for info in self.state.optimizers.values())
        listing = ", ".join(f"{n} ({d})" for n, d in bad[:2]) + (f" and {len(bad) - 2} more" if len(bad) > 2 else "")
        if steps_done == 0 and self.state.backward_calls <= 1:
            msg = f"parameters are NaN/Inf before any update: {listing}"
            return {"code": "numerics.nonfinite-init", "message": msg, "step": step, "location": names[0],
                    "evidence": {"param": names[0], "params": names[:8]}}
        _, values = self.state.losses.series()
        finite = [v for v in values if math.isfinite(v)]
        last = _fmt(finite[-1]) if finite else "none"
        when = f"in the optimizer update of step {step}" if at_update else f"in an optimizer update before step {step}"
        evidence: dict[str, Any] = {"params": names[:8], "last_finite_loss": last, "lr": self._lr(),
                                    "optimizer": self._opt_name(optimizer)}
        grad_state = self._bad_optimizer_state(names)
        if self._grad_bad or grad_state:
            where = next(iter(self._grad_bad), None)
            detail = f"{where} got {self._grad_bad[where]}" if where else grad_state
            cands = [h for h in self._op_hits if h["kind"] in ("derivative", "nonfinite")]
            hint = ""
            if cands:
                h = cands[-1]
                hint = f" (likely {h['op']} {'in ' + h['module'] if h['module'] else 'outside the model'}: " \
                       f"{h['detail']} [{h['site']}])"
            msg = (f"the gradient became NaN/Inf while the loss was finite ({last}): {detail}; the update "
                   f"{'of step ' + str(step) if at_update else 'before step ' + str(step)} then made "
                   f"{len(bad)} parameter tensor(s) NaN/Inf. An op with an infinite derivative is the usual cause{hint}")
            evidence.update(hint=hint, gradient=detail)
            location = cands[-1]["site"] if cands and cands[-1]["site"] else (where or names[0])
            return {"code": "numerics.nonfinite-gradient", "message": msg, "step": step,
                    "location": location, "evidence": evidence}
        eps_zero = self._eps_zero(names)
        diverged = self._diverged()
        if eps_zero:
            cause, fix = (f"{eps_zero} has eps=0: Adam divides 0 by 0 where a gradient entry is exactly 0",
                          f"Use a positive eps (the default 1e-8) in {eps_zero}.")
        elif diverged:
            cause, fix = (f"the loss diverged first ({diverged}): the learning rate ({self._lr()}) is too high",
                          f"Lower the learning rate (now {self._lr()}) by 10x.")
        elif self._plain_sgd(names):
            cause, fix = ("plain SGD stays finite with a finite gradient, so the gradient itself was NaN/Inf "
                          "(sqrt/pow/norm at 0, log/div inside torch.where)",
                          "Look for sqrt/pow/norm at 0 or log/div inside torch.where: they give NaN/Inf gradients.")
        else:
            cause, fix = ("a too-large step or a NaN/Inf gradient",
                          f"Lower the learning rate (now {self._lr()}) by 10x and check the gradients for NaN.")
        evidence.update(cause=cause, cause_fix=fix, diverged=diverged or "")
        msg = f"parameters became NaN/Inf {when} (last finite loss {last}): {listing}; {cause}"
        return {"code": "numerics.nonfinite-update", "message": msg, "step": step,
                "location": names[0], "evidence": evidence,
                "severity": Severity.WARNING if diverged and not eps_zero else Severity.ERROR}

    # ------------------------------------------------------------------ helpers
    def _live_params(self) -> list[torch.Tensor]:
        params = [p for p in (r() for r in self.state.param_refs.values()) if p is not None]
        return [p for p in params if p.is_floating_point() and p.numel()]

    def _fingerprint(self) -> dict[int, tuple[int, float]]:
        """Each parameter's version counter and norm: an update changes one or the other (fused
        optimizers write without bumping the version)."""
        params = self._live_params()[:4096]
        if not params:
            return {}
        try:
            norms = torch._foreach_norm([local(p).detach() for p in params])
            values = torch.stack([n.float().reshape(()).cpu() for n in norms]).tolist()
        except (RuntimeError, TypeError, AttributeError):
            values = [math.nan] * len(params)
        return {id(p): (local(p)._version, v) for p, v in zip(params, values)}

    def _params_changed(self, diag: dict[str, Any]) -> bool:
        """Whether an optimizer (or a manual update) wrote to the parameters since the diagnosis."""
        before = diag.get("params_before")
        if not before:
            return False
        now = self._fingerprint()
        return any(key in before and (v[0] != before[key][0] or v[1] != before[key][1]) for key, v in now.items())

    def _bad_params(self, params: list[torch.Tensor] | None = None) -> list[tuple[str, str]]:
        if params is None:
            params = [p for p in (r() for r in self.state.param_refs.values()) if p is not None]
        # (sharded parameters: this rank's shard, never a collective)
        pairs = [(p, t) for p in params if (t := local(p)).is_floating_point() and t.numel()]
        if not pairs:
            return []
        shards = [t for _, t in pairs]
        if _all_finite(shards):  # one fused reduction, one read: the usual case
            return []
        flags = torch.stack([torch.isfinite(t).all() for t in shards]).tolist()
        out = []
        for (p, t), ok in zip(pairs, flags):
            if not ok:
                n_nan = int(torch.isnan(t).sum())
                n_inf = int(torch.isinf(t).sum())
                out.append((self.state.param_name(p), f"{n_nan} NaN, {n_inf} Inf of {t.numel()}"))
        return out

    def _bad_inputs(self) -> list[str]:
        out = []
        refs = []
        if self._last_input is not None:
            model, args, kwargs = self._last_input
            for key, value in list(enumerate(args)) + list(kwargs.items()):
                if isinstance(value, torch.Tensor) and value.is_floating_point():
                    refs.append((f"{model} input {key}", value))
                if len(refs) >= 4:
                    break
        for name, x in refs:
            if not nonfinite(x):
                continue
            n_nan, n_inf = int(torch.isnan(x).sum()), int(torch.isinf(x).sum())
            where = f"{name} has {n_nan} NaN and {n_inf} Inf values (shape {tuple(x.shape)})"
            if x.dim() == 2:
                bad = ~torch.isfinite(x)
                cols = bad.any(0).nonzero().flatten().tolist()
                where += f" in columns {cols[:8]}"
                whole = bad.all(0).nonzero().flatten().tolist()
                if whole and x.shape[0] > 1:
                    where += (f"; column(s) {whole[:8]} are NaN/Inf in every row, the mark of a constant "
                              "feature divided by its std of 0")
            out.append(where)
        return out

    def _bad_optimizer_state(self, names: list[str]) -> str:
        for info, opt in self.state.live_optimizers():
            for group in opt.param_groups:
                for p in group["params"]:
                    if self.state.param_name(p) not in names:
                        continue
                    for key, buf in opt.state.get(p, {}).items():
                        if isinstance(buf, torch.Tensor) and buf.is_floating_point() and buf.dim() and nonfinite(buf):
                            return f"{info.name} state '{key}' of {self.state.param_name(p)} is NaN/Inf"
        return ""

    def _eps_zero(self, names: list[str]) -> str:
        for info, opt in self.state.live_optimizers():
            for group in opt.param_groups:
                if group.get("eps", None) == 0 and any(self.state.param_name(p) in names for p in group["params"]):
                    return f"{info.name} ({type(opt).__name__})"
        return ""

    def _plain_sgd(self, names: list[str]) -> bool:
        for _, opt in self.state.live_optimizers():
            for group in opt.param_groups:
                if any(self.state.param_name(p) in names for p in group["params"]):
                    return isinstance(opt, torch.optim.SGD) and not group.get("momentum")
        return False

    def _diverged(self) -> str:
        _, values = self.state.losses.series()
        finite = [v for v in values if math.isfinite(v)]
        if len(finite) < 3:
            return ""
        best, peak = min(abs(v) for v in finite), max(abs(v) for v in finite[-3:])
        if peak >= _DIVERGED_RATIO * max(best, 1e-6):
            return f"best {_fmt(best)} -> {_fmt(peak)}"
        return ""

    def _lr(self) -> str:
        for _, opt in self.state.live_optimizers():
            if opt.param_groups:
                return str(opt.param_groups[0].get("lr"))
        return "?"

    def _opt_name(self, optimizer: torch.optim.Optimizer | None) -> str:
        if optimizer is not None:
            info = self.state.optimizers.get(id(optimizer))
            return info.name if info else type(optimizer).__name__
        return ", ".join(info.name for info, _ in self.state.live_optimizers())


def _params_of(optimizer: torch.optim.Optimizer) -> list[torch.Tensor]:
    return [p for g in optimizer.param_groups for p in g["params"]]


def _scalar(t: torch.Tensor) -> str:
    if t.numel() == 1:
        return str(float(t.detach().reshape(()).float()))
    return "NaN/Inf"


def _op_values(canon: str, args: tuple[Any, ...], result: Any) -> dict[str, Any]:
    a0 = args[0] if args else None
    a1 = args[1] if len(args) > 1 else None
    if canon == "rdiv":
        return {"other": a0, "result": result}
    if canon == "rpow":
        return {"exponent": a0, "self": a1, "result": result}
    if canon == "div":
        return {"self": a0, "other": a1, "result": result}
    if canon == "pow":
        return {"self": a0, "exponent": a1, "result": result}
    if canon == "masked_fill":
        return {"self": a0, "mask": a1, "value": args[2] if len(args) > 2 else None, "result": result}
    return {"self": a0, "result": result}


def _infinite_derivative(canon: str, vals: dict[str, Any]) -> str | None:
    x = vals.get("self")
    if not isinstance(x, torch.Tensor) or not x.requires_grad or not x.is_floating_point():
        return None
    if canon == "pow":
        e = vals.get("exponent")
        if not isinstance(e, (int, float)) or not 0 < e < 1:
            return None
    if canon == "norm":
        return "norm of an all-zero vector (NaN gradient)" if not bool(x.any()) else None
    zeros = int((x == 0).sum())
    return f"{canon} at {zeros} exact zeros (infinite derivative)" if zeros else None
