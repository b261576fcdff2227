"""loss-input: the model's output and the loss disagree.

Judged from what the tensors are, never from variable names: the observer's provenance
labels (which op produced the loss input: ``softmax``, ``sigmoid``, ``log_softmax``,
``relu``..., carried through views) and, where the label was lost, value properties
(rows that sum to 1, values that stay inside (0, 1] call after call, rows whose
log-sum-exp is not 0). Checks here:

* :class:`ProbabilitiesIntoLogitLoss`: softmax/sigmoid (or log-probabilities, or ReLU
  outputs) fed to ``cross_entropy`` / ``binary_cross_entropy_with_logits``.
* :class:`NllLossInput`: raw logits or probabilities fed to ``nll_loss``.
* :class:`KlDivInput`: probabilities as ``kl_div``'s input, or log-probabilities as its target
  without ``log_target=True``.
* :class:`SoftmaxDim`: softmax over a dimension of size 1, over the batch dimension, or applied
  to softmax output again.
* :class:`OutputRange`: a regression loss whose prediction comes from an activation whose
  range cannot reach the targets, and softmax outputs (rows that sum to 1) compared by
  MSE / L1 / BCE with targets whose rows do not sum to 1 (multi-hot, multi-label targets).
"""

from __future__ import annotations

import dataclasses
import math
import re
from typing import Any, Iterable

import torch

from nndoctor.checks import Check, register
from nndoctor.findings import Finding, Severity
from nndoctor.monitor.events import LossCall, ModelInput, OpCall, Provenance
from nndoctor.monitor.observer import user_site

__all__ = [
    "KlDivInput",
    "NllLossInput",
    "OutputRange",
    "ProbabilitiesIntoLogitLoss",
    "SoftmaxDim",
    "StepBatchSizes",
    "batch_sizes_of",
    "fmt",
    "head",
    "loss_label",
    "squashed_by",
    "trace_node",
]

#: how users usually spell each loss
_LOSS_LABELS = {
    "cross_entropy": "CrossEntropyLoss / F.cross_entropy",
    "binary_cross_entropy_with_logits": "BCEWithLogitsLoss / F.binary_cross_entropy_with_logits",
    "binary_cross_entropy": "BCELoss / F.binary_cross_entropy",
    "nll_loss": "NLLLoss / F.nll_loss",
    "mse_loss": "MSELoss / F.mse_loss",
    "l1_loss": "L1Loss / F.l1_loss",
    "smooth_l1_loss": "SmoothL1Loss / F.smooth_l1_loss",
    "huber_loss": "HuberLoss / F.huber_loss",
    "kl_div": "KLDivLoss / F.kl_div",
    "poisson_nll_loss": "PoissonNLLLoss / F.poisson_nll_loss",
}
#: loss -> the squashing function it applies itself
_LOGIT_LOSSES = {"cross_entropy": "softmax", "binary_cross_entropy_with_logits": "sigmoid"}
#: ops whose output is a probability
_PROB_OPS = frozenset({"softmax", "sigmoid", "hardsigmoid"})
#: ops whose output is a log-probability
_LOG_PROB_OPS = frozenset({"log_softmax", "logsigmoid"})
#: ops whose output is never negative
_NON_NEGATIVE_OPS = frozenset({"relu", "relu6", "softplus", "abs", "exp", "square"})
#: value range of each activation's output
_RANGES: dict[str, tuple[float, float]] = {
    "relu": (0.0, math.inf), "relu6": (0.0, 6.0), "softplus": (0.0, math.inf), "exp": (0.0, math.inf),
    "abs": (0.0, math.inf), "square": (0.0, math.inf), "sigmoid": (0.0, 1.0), "hardsigmoid": (0.0, 1.0),
    "softmax": (0.0, 1.0), "tanh": (-1.0, 1.0), "log_softmax": (-math.inf, 0.0),
    "logsigmoid": (-math.inf, 0.0),
}
_REGRESSION_LOSSES = frozenset({"mse_loss", "l1_loss", "smooth_l1_loss", "huber_loss"})
#: element-wise losses that may compare softmax rows with target rows
_SIMPLEX_LOSSES = _REGRESSION_LOSSES | {"binary_cross_entropy"}
#: a target row whose sum is this far from 1 cannot be matched by a softmax row
_ROW_SUM_TOL = 0.05
#: share of such rows that makes softmax the wrong output (a few odd rows are not worth a warning)
_OFF_SIMPLEX_SHARE = 0.05
#: sampled calls with every value in (0, 1] before BCE-with-logits input is called sigmoid-like
_SIGMOID_LIKE_CALLS = 3
_SIGMOID_LIKE_VALUES = 48
#: without a squashing op behind them, values in (0, 1] must stay there this many training steps
#: (untrained logits may lie in (0, 1] by chance; training moves real logits out of it)
_SIGMOID_LIKE_STEPS = 100
#: autograd nodes of a squashing function (exp of a hand-written sigmoid, clamp to [0, 1]...)
_SQUASH_NODES = frozenset({"ExpBackward0", "SigmoidBackward0", "TanhBackward0", "SoftmaxBackward0",
                           "ClampBackward1", "ClampBackward0", "HardsigmoidBackward0", "HardtanhBackward0",
                           "ErfBackward0", "Exp2Backward0"})
#: autograd nodes of a layer with weights: a squash behind one is inside the model, not on its output
_LAYER_NODES = frozenset({"AddmmBackward0", "MmBackward0", "BmmBackward0", "ConvolutionBackward0",
                          "LinearBackward0", "EmbeddingBackward0", "MvBackward0", "AccumulateGrad"})
#: autograd nodes that move or select values without changing what they are (views, indexing, a bias)
_TRANSPARENT = re.compile(r"(View|UnsafeView|Reshape\w*|Squeeze\w*|Unsqueeze|Select|Slice|T|Transpose|Permute|Clone"
                          r"|Expand|Index|Add|ToCopy|Flatten|Contiguous)Backward\d+")
#: share of targets outside the activation's range that makes the range a problem
_OUT_OF_RANGE_SHARE = 0.02
#: ... and the smallest squared error those targets force, as a share of the target variance
_UNREACHABLE_VARIANCE = 0.01


def loss_label(name: str) -> str:
    """``cross_entropy`` -> ``CrossEntropyLoss / F.cross_entropy``."""
    return _LOSS_LABELS.get(name, f"F.{name}")


def fmt(value: float) -> str:
    """A short human number: 3 significant digits, ``inf`` spelled out."""
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return f"{value:.3g}"


class StepBatchSizes:
    """Batch sizes of the current step's root-model inputs, for checks that compare shapes to N.

    Only sampled forwards are read: the op and loss events these sizes serve arrive on
    sampled steps alone, so unsampled steps cost nothing.
    """

    def __init__(self) -> None:
        self.sizes: set[int] = set()
        self._step = -1

    def update(self, event: ModelInput) -> None:
        if not event.sampled:
            return
        if event.step != self._step:
            self.sizes, self._step = set(), event.step
        self.sizes |= batch_sizes_of(event)


def batch_sizes_of(event: ModelInput) -> set[int]:
    """Leading sizes of the batched (>= 2-d) tensors a root model was called with."""
    sizes: set[int] = set()
    values: list[Any] = [*event.args, *event.kwargs.values()]
    for value in list(values):  # one level into containers: model({"x": ...}), model([a, b])
        if isinstance(value, (list, tuple)):
            values.extend(value[:8])
        elif isinstance(value, dict):
            values.extend(list(value.values())[:8])
    for value in values:
        if isinstance(value, torch.Tensor) and value.dim() >= 2 and value.shape[0] > 1:
            sizes.add(int(value.shape[0]))
            if value.dim() == 3 and value.shape[1] > 1:  # (T, N, F) of a time-major RNN
                sizes.add(int(value.shape[1]))
    return sizes


def _where(prov: Provenance | None, event: LossCall) -> str:
    """Where the activation ran (its module), else the line calling the loss."""
    if prov is not None and prov.module:
        return prov.module
    return event.site or event.name


def _made_by(prov: Provenance) -> str:
    return f"produced by {prov.op}" + (f" in {prov.module}" if prov.module else "")


def head(x: torch.Tensor) -> torch.Tensor:
    """The first samples of a batch (a view): enough to judge, cheap for segmentation-size outputs."""
    if x.dim() < 2:
        return x
    return x[:8] if x.dim() > 2 else x[:4096]


def _rows_are_probabilities(x: torch.Tensor, dim: int = 1) -> bool:
    if x.dim() < 2 or x.shape[dim] < 2 or not x.is_floating_point():
        return False
    x = head(x).detach().float()
    if x.min().item() < 0:
        return False
    sums = x.sum(dim)
    return bool(torch.allclose(sums, torch.ones_like(sums), atol=1e-3))


def _trace(x: torch.Tensor, depth: int = 8) -> tuple[str | None, bool]:
    """Walk the autograd graph back from ``x`` to the last layers with weights: the squashing node met on
    the way (a hand-written ``1 / (1 + exp(-z))``, a clamp to [0, 1]...) or None, and whether a layer
    was reached through views, indexing and additions only (``x`` is that layer's raw scores)."""
    return trace_node(getattr(x, "grad_fn", None), depth)


def trace_node(start: Any, depth: int = 8) -> tuple[str | None, bool]:
    """:func:`_trace` from an autograd node (``tensor.grad_fn`` or one of its inputs)."""
    frontier, seen, raw = [(start, True)], set(), False
    for _ in range(depth):
        nxt = []
        for node, clean in frontier:
            if node is None or id(node) in seen:
                continue
            seen.add(id(node))
            name = type(node).__name__
            if name in _SQUASH_NODES:
                return name, False
            if name in _LAYER_NODES:
                raw = raw or (clean and name != "AccumulateGrad")
                continue  # the model's own layers: a squash before them is a hidden activation
            clean = clean and _TRANSPARENT.fullmatch(name) is not None
            nxt.extend((n, clean) for n, _ in getattr(node, "next_functions", ()) if n is not None)
        frontier = nxt
    return None, raw


def squashed_by(x: torch.Tensor, depth: int = 8) -> str | None:
    """The autograd node of a squashing function between ``x`` and the last layer with weights, or None."""
    return _trace(x, depth)[0]


def made_by_layer(x: torch.Tensor, depth: int = 8) -> bool:
    """``x`` is a layer's raw scores (a Linear/conv node reached through views, indexing and additions
    only, no squashing function anywhere on the way), whatever their values."""
    squash, raw = _trace(x, depth)
    return squash is None and raw


def _values(x: torch.Tensor) -> torch.Tensor | None:
    """A float view of the finite-checked values, or None (NaN/Inf or empty: not ours)."""
    if not x.is_floating_point() or x.numel() == 0:
        return None
    x = head(x).detach().float()
    if not bool(torch.isfinite(x).all()):
        return None
    return x


@register
class ProbabilitiesIntoLogitLoss(Check):
    """Softmax/sigmoid outputs (or log-probabilities, ReLU outputs) into a loss that wants logits."""

    code = "loss-input.probabilities-into-logit-loss"
    needs = ("loss",)
    extra_codes = (
        "loss-input.log-softmax-into-cross-entropy",
        "loss-input.log-probabilities-into-logit-loss",
        "loss-input.relu-into-logit-loss",
    )

    def __init__(self, state: Any) -> None:
        super().__init__(state)
        #: per loss call site: [sampled calls with values in (0, 1], values seen, settled]
        self._tallies: dict[str, list[int]] = {}

    def check(self, event: LossCall) -> Iterable[Finding]:
        expects = _LOGIT_LOSSES.get(event.name)
        if expects is None:
            return ()
        prov = event.provenance
        op = prov.op if prov is not None else None
        base = {"loss": loss_label(event.name), "input_shape": tuple(event.input.shape), "site": event.site}
        if op in _PROB_OPS:
            return [self._probabilities(event, f"{op} probabilities", _made_by(prov), op, prov)]
        if op in _LOG_PROB_OPS:
            return self._log_probabilities(event, prov, base)
        if op in _NON_NEGATIVE_OPS:
            found = self._non_negative(event, prov, base)
            if found:
                return found
        # the label was lost (manual sigmoid, exp(log_softmax), clamp, cat...): judge by values
        if event.name == "cross_entropy" and _rows_are_probabilities(event.input):
            return [self._probabilities(event, "probabilities", "every row is non-negative and sums to 1",
                                        expects, prov if op == "exp" else None)]
        if event.name == "binary_cross_entropy_with_logits":
            return self._sigmoid_like(event)
        return ()

    def _probabilities(self, event: LossCall, what: str, how: str, activation: str,
                       prov: Provenance | None) -> Finding:
        loss = loss_label(event.name)
        applies = _LOGIT_LOSSES[event.name]
        location = _where(prov, event)
        evidence = {"loss": loss, "activation": activation, "input_shape": tuple(event.input.shape),
                    "how_detected": how, "site": event.site, "location": location}
        x = _values(event.input)
        if x is not None:
            evidence.update(input_min=round(x.min().item(), 4), input_max=round(x.max().item(), 4))
        return self.finding(
            f"{loss} expects logits but receives {what} of shape {tuple(event.input.shape)} ({how}); "
            f"the loss applies {applies} on top, which squashes the scores into a narrow range, "
            f"flattens the gradients and slows or stalls learning",
            evidence, location=location)

    def _log_probabilities(self, event: LossCall, prov: Provenance, base: dict[str, Any]) -> list[Finding]:
        evidence = {**base, "activation": prov.op, "how_detected": _made_by(prov)}
        if event.name == "cross_entropy" and prov.op == "log_softmax":
            return [self.finding(
                f"{base['loss']} receives log_softmax output ({_made_by(prov)}); CrossEntropyLoss applies "
                f"log_softmax itself, and log_softmax of log-probabilities changes nothing, so training is "
                f"correct, but the code reads as if the loss were NLLLoss",
                evidence, location=_where(prov, event),
                code="loss-input.log-softmax-into-cross-entropy", severity=Severity.INFO)]
        if event.name != "binary_cross_entropy_with_logits":
            return []
        return [self.finding(
            f"{base['loss']} receives {prov.op} output ({_made_by(prov)}), values <= 0: the loss applies "
            f"sigmoid to them, so every predicted probability stays <= 0.5 and the positive class can "
            f"never be predicted",
            evidence, location=_where(prov, event), code="loss-input.log-probabilities-into-logit-loss")]

    def _non_negative(self, event: LossCall, prov: Provenance, base: dict[str, Any]) -> list[Finding]:
        location = _where(prov, event)
        evidence = {**base, "activation": prov.op, "how_detected": _made_by(prov), "location": location}
        if event.name == "binary_cross_entropy_with_logits":
            return [self.finding(
                f"{base['loss']} receives {prov.op} output ({_made_by(prov)}), which is never negative: "
                f"sigmoid of it is always >= 0.5, so the negative class can never be predicted",
                evidence, location=location, code="loss-input.relu-into-logit-loss")]
        if prov.op not in ("relu", "relu6"):
            return []
        return [self.finding(
            f"{base['loss']} receives {prov.op} output ({_made_by(prov)}): logits cannot go below 0, and "
            f"a class whose pre-activation is negative gets no gradient, so it can stay stuck",
            evidence, location=location, code="loss-input.relu-into-logit-loss", severity=Severity.WARNING)]

    def _sigmoid_like(self, event: LossCall) -> list[Finding]:
        tally = self._tallies.setdefault(event.site, [0, 0, 0, event.step])
        if tally[2]:
            return []
        x = _values(event.input)
        if x is None:
            return []
        lo, hi = x.min().item(), x.max().item()
        if lo <= 0.0 or hi > 1.0:
            tally[2] = 1  # real logits at this call site: never judge it by values again
            return []
        tally[0] += 1
        tally[1] += x.numel()
        if tally[0] < _SIGMOID_LIKE_CALLS or tally[1] < _SIGMOID_LIKE_VALUES:
            return []
        squash, raw = _trace(event.input)
        if squash is None and raw:
            tally[2] = 1  # a layer's raw scores that have not left (0, 1] yet (a stalled run): logits
            return []
        span = event.step - tally[3]
        if squash is None and span < _SIGMOID_LIKE_STEPS:
            return []  # values alone, not for long: untrained logits may lie in (0, 1] by chance
        tally[2] = 1  # report once
        how = (f"all {tally[1]} values of {tally[0]} sampled calls lie in (0, 1], last call min {fmt(lo)} "
               f"max {fmt(hi)}, " + (f"made by {squash[:-len('Backward0')].lower()} after the last layer"
                                     if squash else f"for {span} training steps"))
        found = self._probabilities(event, "sigmoid-like probabilities", how, "sigmoid", None)
        return [found if squash else dataclasses.replace(found, severity=Severity.WARNING)]


@register
class NllLossInput(Check):
    """``nll_loss`` needs log-probabilities: raw logits or probabilities make it meaningless."""

    code = "loss-input.logits-into-nll-loss"
    needs = ("loss",)
    extra_codes = ("loss-input.probabilities-into-nll-loss",)

    def check(self, event: LossCall) -> Iterable[Finding]:
        if event.name != "nll_loss":
            return ()
        prov = event.provenance
        x = event.input
        base = {"loss": loss_label(event.name), "input_shape": tuple(x.shape), "site": event.site}
        if prov is not None and prov.op in _PROB_OPS:
            location = _where(prov, event)
            return [self.finding(
                f"{base['loss']} receives {prov.op} probabilities ({_made_by(prov)}) instead of "
                f"log-probabilities: it returns -p[target], a bounded linear score with weak gradients, "
                f"not the log-likelihood",
                {**base, "activation": prov.op, "location": location}, location=location,
                code="loss-input.probabilities-into-nll-loss")]
        vals = _values(x)
        if vals is None:
            return ()
        class_dim = 1 if x.dim() >= 2 else 0
        if x.shape[class_dim] < 2:
            return ()
        if _rows_are_probabilities(vals, class_dim):
            location = _where(prov, event)
            return [self.finding(
                f"{base['loss']} receives probabilities (every row of {tuple(x.shape)} is non-negative and "
                f"sums to 1) instead of log-probabilities: it returns -p[target], not the log-likelihood",
                {**base, "activation": "softmax", "location": location}, location=location,
                code="loss-input.probabilities-into-nll-loss")]
        lse = torch.logsumexp(vals, class_dim)
        lse = lse[torch.isfinite(lse)]
        vmax = vals.max().item()
        dev = lse.abs().max().item() if lse.numel() else 0.0
        if vmax <= 1e-3 and dev <= 0.1:
            return ()
        location = event.site or event.name
        if vmax > 1e-3:
            reason = f"max value {fmt(vmax)} > 0, impossible for a log-probability"
            what = "raw scores"
        else:
            reason = (f"values are <= 0 but do not normalise over dim {class_dim}: row log-sum-exp "
                      f"{fmt(lse.min().item())}..{fmt(lse.max().item())} instead of 0")
            what = "unnormalised log-scores (log of a softmax over another dim, or of raw scores)"
            if prov is not None and prov.op in _LOG_PROB_OPS:
                over = (f"over dim {prov.dim} of a {prov.input_shape} tensor" if prov.op == "log_softmax"
                        else "per unit, not over classes")
                what = f"{prov.op} output ({_made_by(prov)}, normalised {over})"
                location = _where(prov, event)
        return [self.finding(
            f"{base['loss']} expects log-probabilities over dim {class_dim} but receives {what} of shape "
            f"{tuple(x.shape)} ({reason}): the loss is then just -score[target], not a log-likelihood, and "
            f"the model learns to inflate scores instead of classifying",
            {**base, "input_max": round(vmax, 4), "logsumexp_max_abs": round(dev, 4),
             "how_detected": reason}, location=location)]


@register
class KlDivInput(Check):
    """``kl_div(input, target)`` wants log-probabilities as input and probabilities as target."""

    code = "loss-input.probabilities-into-kl-div"
    needs = ("loss",)
    extra_codes = ("loss-input.log-probabilities-as-kl-div-target",)

    def __init__(self, state: Any) -> None:
        super().__init__(state)
        self._reported: set[str] = set()

    def check(self, event: LossCall) -> Iterable[Finding]:
        if event.name != "kl_div" or event.site in self._reported:
            return ()
        x, prov = event.input, event.provenance
        base = {"loss": loss_label(event.name), "input_shape": tuple(x.shape), "site": event.site}
        if (prov is not None and prov.op in _PROB_OPS) or (
                (prov is None or prov.op not in _LOG_PROB_OPS) and _rows_are_probabilities(x, -1)):
            self._reported.add(event.site)
            how = _made_by(prov) if prov is not None and prov.op in _PROB_OPS else "rows are >= 0 and sum to 1"
            return [self.finding(
                f"{base['loss']} expects log-probabilities as its input but receives probabilities of shape "
                f"{tuple(x.shape)} ({how}): it computes target * (log target - input), which is not a KL "
                f"divergence, so the distillation/matching term pulls in the wrong direction",
                {**base, "how_detected": how}, location=_where(prov, event))]
        t = event.target
        observer = self.state.observer
        tprov = observer.provenance(t) if observer is not None and t is not None else None
        log_target = bool(event.kwargs.get("log_target", False))
        if log_target or tprov is None or tprov.op not in _LOG_PROB_OPS:
            return ()
        self._reported.add(event.site)
        return [self.finding(
            f"{base['loss']} receives a target produced by {tprov.op} (log-probabilities) without "
            f"log_target=True: it treats the values <= 0 as probabilities, so the loss is meaningless",
            {**base, "target_op": tprov.op}, location=event.site or event.name,
            code="loss-input.log-probabilities-as-kl-div-target")]


@register
class SoftmaxDim(Check):
    """Softmax over a size-1 dimension (constant output), over the batch dimension, or twice."""

    code = "loss-input.softmax-over-one-unit"
    needs = ("loss", "model_input", "op")
    sampled_only = frozenset({"model_input"})
    ops = frozenset({"softmax", "log_softmax"})
    extra_codes = ("loss-input.softmax-over-batch-dim", "loss-input.double-softmax")

    def __init__(self, state: Any) -> None:
        super().__init__(state)
        self._batch = StepBatchSizes()
        self._reported: set[str] = set()

    def check(self, event: Any) -> Iterable[Finding]:
        if isinstance(event, ModelInput):
            self._batch.update(event)
            return ()
        if isinstance(event, OpCall):
            return self._on_softmax(event)
        if isinstance(event, LossCall):
            return self._on_loss(event)
        return ()

    def _on_softmax(self, event: OpCall) -> list[Finding]:
        x = event.args[0] if event.args else event.kwargs.get("input")
        if not isinstance(x, torch.Tensor):
            return []
        inner = event.input_provenance[0] if event.input_provenance else None
        if inner is not None and inner.op == "softmax" and x.requires_grad:
            return self._double(event, x, inner)
        # only the unmistakable op-level case: a 2-d (N, 1) score inside a model, training
        if x.dim() != 2 or x.shape[1] != 1 or x.shape[0] < 2:
            return []
        if not (x.requires_grad and event.module):
            return []
        dim = event.kwargs.get("dim", event.args[1] if len(event.args) > 1 else None)
        dim = 1 if dim is None else dim  # the legacy implicit dim of a 2-d input
        if dim not in (1, -1):
            return []
        return self._one_unit(event.name, tuple(x.shape), dim, event.module, event.module, "")

    def _double(self, event: OpCall, x: torch.Tensor, inner: Provenance) -> list[Finding]:
        """softmax/log_softmax of softmax output over the same dim: probabilities squashed again."""
        dim = event.kwargs.get("dim", event.args[1] if len(event.args) > 1 else None)
        n = x.dim()
        first = 1 if inner.dim is None and n == 2 else inner.dim
        second = 1 if dim is None and n == 2 else dim
        if not isinstance(first, int) or not isinstance(second, int) or n == 0 or first % n != second % n:
            return []
        location = event.module or user_site() or event.name
        if location in self._reported:
            return []
        self._reported.add(location)
        where_first = inner.module or "an earlier line"
        evidence = {"activation": event.name, "dim": second, "input_shape": tuple(x.shape), "location": location,
                    "first": where_first}
        return [self.finding(
            f"{event.name} at {location} is applied to softmax output (from {where_first}) over the same dim "
            f"{second} of a {tuple(x.shape)} tensor: probabilities in [0, 1] are squashed again into an "
            f"almost uniform distribution, so predictions stay unsure and gradients are tiny",
            evidence, location=location, code="loss-input.double-softmax")]

    def _on_loss(self, event: LossCall) -> list[Finding]:
        prov = event.provenance
        if event.name == "cross_entropy" and event.input.dim() >= 2 and event.input.shape[1] == 1:
            shape = tuple(event.input.shape)
            return self._one_unit("CrossEntropyLoss", shape, 1, event.site or event.name, "", event.site,
                                  loss=event.name, message=(
                                      f"{loss_label(event.name)} gets scores of shape {shape}: a single class, "
                                      f"so the softmax inside the loss is always 1 and the loss is the "
                                      f"constant 0; nothing is learned"))
        if prov is None or prov.op not in ("softmax", "log_softmax") or not prov.input_shape:
            return []
        shape = prov.input_shape
        dim = prov.dim
        if dim is None:  # legacy implicit dim of F.softmax
            dim = 0 if len(shape) in (0, 1, 3) else 1
        if not -len(shape) <= dim < len(shape):
            return []
        dim = dim % len(shape)
        location = _where(prov, event)
        if shape[dim] == 1:
            return self._one_unit(prov.op, shape, dim, location, prov.module, event.site, loss=event.name)
        batch = set(self._batch.sizes)
        if not batch and event.target is not None and event.target.dim() >= 1:
            batch = {int(event.target.shape[0])}
        if dim != 0 or shape[0] not in batch or shape[0] < 2 or location in self._reported:
            return []
        self._reported.add(location)
        evidence = {"activation": prov.op, "dim": prov.dim, "input_shape": shape, "batch_size": shape[0],
                    "loss": loss_label(event.name), "site": event.site, "location": location}
        return [self.finding(
            f"{prov.op} over dim {prov.dim if prov.dim is not None else '0 (implicit)'} of a {shape} tensor "
            f"({_made_by(prov)}) normalises across the {shape[0]} samples of the batch, not across classes; "
            f"its output reaches {loss_label(event.name)}, so each sample's prediction depends on the "
            f"rest of the batch",
            evidence, location=location, code="loss-input.softmax-over-batch-dim")]

    def _one_unit(self, op: str, shape: tuple[int, ...], dim: int, location: str, module: str, site: str,
                  loss: str = "", message: str = "") -> list[Finding]:
        if location in self._reported:
            return []
        self._reported.add(location)
        constant = "0" if op == "log_softmax" else "1"
        to_loss = f" and reaches {loss_label(loss)}" if loss else ""
        evidence = {"activation": op, "dim": dim, "input_shape": shape, "location": location,
                    "module": module, "site": site, "loss": loss_label(loss) if loss else ""}
        message = message or (
            f"{op} over dim {dim} of size 1 (shape {shape}) at {location}: its output is the constant "
            f"{constant} whatever the input{to_loss}, so the loss cannot change and nothing is learned")
        return [self.finding(message, evidence, location=location)]


@register
class OutputRange(Check):
    """A regression loss whose prediction comes from an activation that cannot reach the targets."""

    code = "loss-input.output-range-cannot-reach-target"
    needs = ("loss",)
    extra_codes = ("loss-input.softmax-multi-label-targets",)

    def __init__(self, state: Any) -> None:
        super().__init__(state)
        self._reported: set[str] = set()

    def check(self, event: LossCall) -> Iterable[Finding]:
        if event.name not in _SIMPLEX_LOSSES or event.target is None:
            return ()
        pred, target, prov = event.input, event.target, event.provenance
        if prov is None or prov.op not in _RANGES:
            # the user may have swapped the arguments: loss(target, prediction), the prediction
            # being the side that is trained (requires grad) and the data side not
            observer = self.state.observer
            swapped = observer.provenance(event.target) if observer is not None else None
            if swapped is None or swapped.op not in _RANGES:
                return ()
            if not event.target.requires_grad or event.input.requires_grad:
                return ()
            pred, target, prov = event.target, event.input, swapped
        location = _where(prov, event)
        if location in self._reported:
            return ()
        t = _values(target)
        if t is None:
            return ()
        if prov.op == "softmax" and t.min().item() >= 0.0 and t.max().item() <= 1.0:
            return self._off_simplex(event, pred, target, prov, location)
        if event.name not in _REGRESSION_LOSSES:
            return ()  # BCE targets outside [0, 1]: preprocessing.bce-target-out-of-range
        lo, hi = _RANGES[prov.op]
        tol = 1e-6 * max(1.0, t.abs().max().item())
        gap = (lo - t).clamp(min=0) + (t - hi).clamp(min=0)  # distance to the nearest reachable value
        outside = (gap > tol).float().mean().item()
        floor_mse = gap.pow(2).mean().item()
        spread = t.var(unbiased=False).item() if t.numel() > 1 else 0.0
        # a few targets just past the edge (noise around 0 under a ReLU) are not worth a warning:
        # the unreachable part must be a real share of the targets and of their variance
        if outside < _OUT_OF_RANGE_SHARE or floor_mse < _UNREACHABLE_VARIANCE * spread:
            return ()
        self._reported.add(location)
        tmin, tmax = t.min().item(), t.max().item()
        out_range = f"[{fmt(lo)}, {fmt(hi)}]"
        evidence = {"loss": loss_label(event.name), "activation": prov.op, "location": location,
                    "output_range": out_range, "target_min": fmt(tmin), "target_max": fmt(tmax),
                    "share_unreachable": round(outside, 3), "min_possible_mse": fmt(floor_mse),
                    "target_variance": fmt(spread), "target_shape": tuple(target.shape),
                    "input_shape": tuple(pred.shape), "site": event.site}
        return [self.finding(
            f"{loss_label(event.name)} compares {prov.op} outputs ({_made_by(prov)}, range {out_range}) with "
            f"targets in [{fmt(tmin)}, {fmt(tmax)}]: {outside:.0%} of the targets are out of reach, so the "
            f"squared error can never go below {fmt(floor_mse)} (target variance {fmt(spread)})",
            evidence, location=location)]

    def _off_simplex(self, event: LossCall, pred: torch.Tensor, target: torch.Tensor, prov: Provenance,
                     location: str) -> list[Finding]:
        """Softmax rows sum to 1: target rows with several 1s (or none) are out of reach."""
        shape = tuple(prov.input_shape) if prov.input_shape else tuple(pred.shape)
        if tuple(target.shape) != tuple(pred.shape) or tuple(pred.shape) != shape or len(shape) < 2:
            return []  # a reshaped or broadcast comparison: the class dim is not known here
        dim = prov.dim
        if dim is None:  # the legacy implicit dim of F.softmax
            dim = 0 if len(shape) in (0, 1, 3) else 1
        if not -len(shape) <= dim < len(shape) or shape[dim] < 2:
            return []
        dim %= len(shape)
        if dim == 0 and shape[0] > 1 and len(shape) == 2:
            return []  # softmax over the batch: loss-input.softmax-over-batch-dim says it
        t = head(target).detach().float()
        sums = t.sum(dim)
        off = (sums - 1.0).abs() > _ROW_SUM_TOL
        share = off.float().mean().item()
        if share < _OFF_SIMPLEX_SHARE or int(off.sum()) < 2:
            return []
        k = shape[dim]
        # Cauchy-Schwarz: a row that sums to 1 is at least |1 - s| / sqrt(k) away from a row summing to s
        floor_mse = ((sums - 1.0).pow(2) / k).sum().item() / max(t.numel(), 1)
        spread = t.var(unbiased=False).item() if t.numel() > 1 else 0.0
        if floor_mse < _UNREACHABLE_VARIANCE * spread:
            return []
        self._reported.add(location)
        smin, smax, smean = sums.min().item(), sums.max().item(), sums.mean().item()
        idx = int(off.flatten().nonzero()[0]) if len(shape) == 2 else 0
        example = t[idx].flatten()[:8].tolist() if len(shape) == 2 else []
        example_row = ("e.g. target row " + str([fmt(v) for v in example]) + (" ..." if k > 8 else "")
                       if example else f"target sums over dim {dim} range {fmt(smin)}..{fmt(smax)}")
        multi = smax > 1.0 + _ROW_SUM_TOL
        kind = "multi-hot (multi-label)" if multi else "all-zero or partial"
        evidence = {"loss": loss_label(event.name), "activation": "softmax", "location": location,
                    "dim": dim, "classes": k, "target_row_sum_min": fmt(smin), "target_row_sum_max": fmt(smax),
                    "target_row_sum_mean": fmt(smean), "share_rows_not_summing_to_1": round(share, 3),
                    "min_possible_mse": fmt(floor_mse), "target_variance": fmt(spread),
                    "target_shape": tuple(target.shape), "input_shape": tuple(pred.shape), "site": event.site,
                    "example_row": example_row}
        return [self.finding(
            f"{loss_label(event.name)} compares softmax outputs ({_made_by(prov)}, every row sums to 1 over dim "
            f"{dim}) with {kind} targets whose rows sum to {fmt(smin)}..{fmt(smax)} (mean {fmt(smean)}; "
            f"{share:.0%} of the rows do not sum to 1): softmax cannot put 1 on several classes at once, so "
            f"those targets are out of reach (squared error >= {fmt(floor_mse)}, target variance {fmt(spread)})",
            evidence, location=location, code="loss-input.softmax-multi-label-targets")]
