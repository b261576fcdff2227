"""grad: vanishing and exploding gradients, from per-layer gradient norms on sampled steps.

At the ``step`` pre event of a sampled step the gradients are complete. The check takes
the norm of every parameter's gradient (on device, one host transfer per sampled step),
orders the weight matrices by the forward pass (seen through ``module_output`` events)
and compares the first layer with the last one, as AUTOTRAINER does:

* vanishing: first/last ratio < 1e-3 with a first-layer norm < 1e-4, or with the norms
  shrinking layer after layer towards the input through >= 4 weight layers (a deep
  sigmoid/tanh stack: the input scale can keep the first norm above 1e-4); or, from the
  first sampled steps on, every hidden layer's gradient < 1e-4 and < 1e-5 of its weight's
  norm (the signal vanished through the whole stack: only the output layer may still learn);
* exploding: first/last ratio > 70, or the total norm grown >= 1000x over the first
  sampled steps.

A layer is measured by its weight matrices; a vector kept in matrix shape beside a full matrix of
the same module (a GAT layer's attention vector ``a`` of shape (2F, 1)) does not stand for it.

With an adaptive optimizer (Adam, RMSprop...), whose updates do not shrink with the gradient,
a vanishing ratio that climbs back fast (its trend over the symptomatic steps reaches 1e-3
within 50 steps) is not reported: a deep narrow stack often starts so and recovers. Nor is a
total norm that only grew (no lopsided layer ratio) while the loss falls: such an update is
about the lr whatever the gradient's scale, so a gradient that grows from a tiny start (small
initial weights, a bidirectional LSTM's spikes) is harm only where the loss, 30 losses after the
growth, is not clearly below the first sampled steps' (or is non-finite, or 10x above at once);
the check keeps watching and reports it then.

A finding needs the symptom at several sampled steps (>= 3, and most of them), except a
single extreme measurement: a first-layer norm >= 1 that is > 1000x the last layer's (an
exploding step usually wrecks the weights, so it is not repeated: the next gradients are
NaN or, with saturated units, zero).
"""

from __future__ import annotations

import dataclasses
import logging
import math
import statistics
from dataclasses import dataclass
from typing import Any, Iterable

import torch
from torch import nn

from nndoctor.checks import Check, register
from nndoctor.findings import Finding
from nndoctor.monitor.checks._layers import LayerOrder, fmt, host_floats, is_finite
from nndoctor.monitor.events import ModuleOutput, StepEvent
from nndoctor.monitor.tensors import local
from nndoctor.report.sections import GradientNorms

__all__ = ["ADAPTIVE", "SERIES_KEY", "GradientScale"]

logger = logging.getLogger("nndoctor")

VANISH_RATIO = 1e-3
VANISH_FIRST = 1e-4
EXPLODE_RATIO = 70.0
GROWTH = 1e3
SPIKE_RATIO = 1e3  # a single sampled step this lopsided is reported on its own...
SPIKE_FIRST = 1.0  # ...when the first layer's gradient norm is not tiny itself
MIN_STEPS = 3
#: with an adaptive optimizer (its updates do not shrink with the gradient), a first/last ratio
#: whose trend climbs back above VANISH_RATIO within this many steps is recovering, not vanished
#: (a deep narrow stack that starts with vanishing gradients)
RECOVER_STEPS = 50
ADAPTIVE = frozenset({"Adam", "AdamW", "Adamax", "NAdam", "RAdam", "RMSprop", "Adagrad", "Adadelta",
                      "SparseAdam", "Adafactor", "LAMB", "Lion"})
STEADY_DEPTH = 4  # weight layers needed to call a layer-after-layer decay a collapse
STEADY_SHARE = 0.7  # share of consecutive layers whose norm shrinks towards the input
TINY_GRAD = 1e-4  # every layer's gradient norm below this...
TINY_RELATIVE = 1e-5  # ...and below this fraction of its weight's norm,
TINY_RELATIVE_SHRUNK = 1e-4  # or of this one when the forward signal shrank >= 100x at init
SHRUNK = 1e-2
LOSS_FALLING = 0.1  # the recent loss this share (of its size) below the first sampled steps' loss: learning
RECENT_LOSSES = 10
AFTER_GROWTH = 30  # losses after the first grown step before a growth under an adaptive optimizer is judged
BLOWN_UP = 10.0  # ...unless the loss is already this many times the first sampled steps'

MAX_LAYERS_SHOWN = 12
#: ``state.extra`` key of the per-layer gradient norms recorded for the report (a GradientNorms section)
SERIES_KEY = "nndoctor.grad_norms"

_SATURATING = {nn.Sigmoid: "sigmoid", nn.Tanh: "tanh", nn.Softsign: "softsign", nn.Hardtanh: "hardtanh"}


@dataclass
class _Sample:
    step: int
    names: list[str]
    norms: list[float]  # weight layers in forward order
    total: float
    weights: list[float] = dataclasses.field(default_factory=list)  # their weights' norms

    def steady_decay(self) -> bool:
        """The gradient norm shrinks layer after layer towards the input (deep stacks only)."""
        pairs = list(zip(self.norms, self.norms[1:]))
        if len(self.norms) < STEADY_DEPTH:
            return False
        return sum(1 for a, b in pairs if a < b) >= STEADY_SHARE * len(pairs)

    def tiny(self, relative: float = TINY_RELATIVE) -> bool:
        """Every hidden layer's gradient is negligible, in absolute terms and against its weight
        (the output layer may still get some: it sits right at the loss)."""
        if len(self.norms) < 3 or len(self.weights) != len(self.norms):
            return False
        return all(0 <= g < TINY_GRAD and g < relative * w for g, w in zip(self.norms[:-1], self.weights))


def _recovering(hits: list[_Sample]) -> bool:
    """The first/last gradient ratio grows back fast: its log-linear trend over the symptomatic
    steps reaches VANISH_RATIO within RECOVER_STEPS steps of the latest one."""
    if len(hits) < 2:
        return False
    xs = [float(s.step) for s in hits]
    ys = [math.log10(s.norms[0] / s.norms[-1]) for s in hits]
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    var = sum((x - mx) ** 2 for x in xs)
    if var <= 0:
        return False
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / var
    at_last = my + slope * (xs[-1] - mx)
    return slope > 0 and at_last + slope * RECOVER_STEPS >= math.log10(VANISH_RATIO)


def _layer_matrices(weights: list[torch.Tensor], module_of: Any) -> list[torch.Tensor]:
    """The weight matrices that stand for their layers: a vector kept in matrix shape (a size-1
    dimension: a GAT layer's attention vector ``a`` of shape (2F, 1) beside its weight ``W``) is left
    out where its module also holds a full matrix. Its gradient is the attention's, not the layer's,
    and is naturally orders of magnitude smaller; a layer whose only matrix has a size-1 dimension
    (``nn.Linear(h, 1)``, a regression head) keeps it."""
    full = {module_of(p) for p in weights if 1 not in p.shape}
    full.discard("")
    return [p for p in weights if 1 not in p.shape or module_of(p) not in full]


def _like_ends(weights: list[torch.Tensor], order: LayerOrder) -> list[torch.Tensor]:
    """``weights`` with the last layer standing for itself by the same matrix as the first layer does.

    A layer parameterised by several matrices (a Bayes-by-backprop layer's mean and ``rho``, whose
    gradient is tiny by construction) would otherwise be compared by its first matrix at the input end
    and its last one at the output end. When both end layers are of one module type with as many matrices
    each, the output layer keeps its first matrix only: like is compared with like."""
    first, last = order.module_of(weights[0]), order.module_of(weights[-1])
    if not first or not last or first == last or order.kind_of(weights[0]) != order.kind_of(weights[-1]):
        return weights
    tail = [p for p in weights if order.module_of(p) == last]
    head = [p for p in weights if order.module_of(p) == first]
    n = len(tail)
    if n < 2 or len(head) != n or any(a is not b for a, b in zip(weights[-n:], tail)) or len(weights) - n < 1:
        return weights
    return weights[:-n] + tail[:1]


def _shown(names: list[str]) -> str:
    return ", ".join(names[:4]) + (f" and {len(names) - 4} more" if len(names) > 4 else "")


@register
class GradientScale(Check):
    """Per-layer gradient norms collapse towards the input (vanishing) or blow up (exploding)."""

    code = "grad.vanishing-gradients"
    needs = ("module_output", "step")
    step_phases = frozenset({"pre"})
    sampled_only = frozenset({"step"})
    extra_codes = ("grad.exploding-gradients",)

    def __init__(self, state: Any) -> None:
        super().__init__(state)
        self.order = LayerOrder()
        self.samples: dict[int, list[_Sample]] = {}
        self.reported: set[tuple[int, str]] = set()
        self.series = self.state.extra.setdefault(SERIES_KEY, GradientNorms())

    def check(self, event: Any) -> Iterable[Finding]:
        if event.kind == "module_output":
            self._see(event)
            return ()
        if event.kind == "step" and event.phase == "pre" and event.sampled:
            return self._on_step(event)
        return ()

    def _see(self, event: ModuleOutput) -> None:
        module = event.module
        if module._parameters and event.grad_enabled and module.training:
            self.order.see(module, event.name)

    # ------------------------------------------------------------------ measuring
    def _on_step(self, event: StepEvent) -> list[Finding]:
        opt = event.optimizer
        # (sharded parameters: this rank's shard, and no layer whose shard is empty here)
        params = [p for g in opt.param_groups for p in g["params"]
                  if isinstance(p, torch.Tensor) and p.grad is not None and not p.grad.is_sparse
                  and local(p).numel()]
        if len(params) < 2:
            return []
        weights = _layer_matrices(self.order.order(params), self.order.module_of)
        if len(weights) < 2:
            return []
        weights = _like_ends(weights, self.order)
        # every norm stays on its device; one host transfer per device for the whole step
        norms_by_id = {id(p): torch.linalg.vector_norm(local(p.grad).detach().float()) for p in params}
        device = next(iter(norms_by_id.values())).device
        total_sq = torch.stack([n.to(device) for n in norms_by_id.values()]).square().sum()
        values = host_floats([norms_by_id[id(p)] for p in weights] + [total_sq]
                             + [torch.linalg.vector_norm(local(p).detach().float()) for p in weights])
        n = len(weights)
        norms, total, wnorms = values[:n], max(values[n], 0.0) ** 0.5, values[n + 1:]
        if not all(is_finite(v) for v in values):
            return []  # non-finite gradients are a numerics finding, not a scale one
        names = [self.order.module_of(p) or self.state.param_name(p) for p in weights]
        history = self.samples.setdefault(id(opt), [])
        history.append(_Sample(event.step, names, norms, total, wnorms))
        self.series.record(event.step, names, norms)  # the report's per-layer chart (bounded)
        if len(history) > 64:
            del history[8:16]  # keep the first sampled steps and the recent ones
        out: list[Finding] = []
        for code, judge in (("grad.vanishing-gradients", self._vanishing),
                            ("grad.exploding-gradients", self._exploding)):
            if (id(opt), code) in self.reported:
                continue
            found = judge(history, event)
            if found is not None:
                self.reported.add((id(opt), code))
                out.append(found)
        return out

    # ------------------------------------------------------------------ judging
    def _vanishing(self, history: list[_Sample], event: StepEvent) -> Finding | None:
        hits = [s for s in history if s.norms[-1] > 0 and s.norms[0] > 0 and s.norms[0] / s.norms[-1] < VANISH_RATIO
                and (s.norms[0] < VANISH_FIRST or s.steady_decay())]
        if len(hits) < MIN_STEPS or len(hits) < 0.6 * len(history):
            return self._vanishing_everywhere(history)
        if type(event.optimizer).__name__ in ADAPTIVE and _recovering(hits):
            return None  # Adam & co. scale each update to the lr: tiny early gradients grow back
        last = hits[-1]
        ratio = statistics.median(s.norms[0] / s.norms[-1] for s in hits)
        starved = [n for n, v in zip(last.names, last.norms) if v < VANISH_RATIO * last.norms[-1]]
        evidence = self._evidence(last, hits, history)
        evidence.update({"ratio": ratio, "starved_layers": starved})
        msg = (f"gradients vanish towards the input: {last.names[0]} gets a gradient norm of "
               f"{fmt(last.norms[0])}, {fmt(ratio)}x that of {last.names[-1]} ({fmt(last.norms[-1])}), "
               f"at {len(hits)} of {len(history)} sampled steps; {len(starved)} of {len(last.names)} "
               f"weight layers barely learn ({_shown(starved)}){self._through()}")
        return self.finding(msg, evidence, location=last.names[0], step=hits[0].step)

    def _vanishing_everywhere(self, history: list[_Sample]) -> Finding | None:
        """Every layer's gradient negligible from the first sampled steps on."""
        first = history[:8]
        scale = self.state.extra.get("nndoctor.init_output_std") or {}
        shrunk = 0 < scale.get("ratio", 1.0) <= SHRUNK
        relative = TINY_RELATIVE_SHRUNK if shrunk else TINY_RELATIVE
        hits = [s for s in first if s.tiny(relative)]
        if len(hits) < MIN_STEPS or len(hits) < 0.6 * len(first) or not first[0].tiny(relative):
            return None
        last = hits[-1]
        hidden = list(zip(last.norms[:-1], last.weights))
        rel = max((g / w for g, w in hidden if w > 0), default=0.0)
        evidence = self._evidence(last, hits, history)
        evidence.update({"largest_grad_to_weight": rel, "starved_layers": list(last.names[:-1])})
        if shrunk:
            evidence["init_output_std_ratio"] = scale["ratio"]
        msg = (f"gradients vanish in every hidden layer: from {last.names[0]} to {last.names[-2]} the gradient "
               f"norms are {fmt(min(last.norms[:-1]))}-{fmt(max(last.norms[:-1]))} (at most {fmt(rel)} of the "
               f"weights' norm) at {len(hits)} of the first {len(first)} sampled steps: only the output layer "
               f"{last.names[-1]} ({fmt(last.norms[-1])}) can learn{self._through()}"
               + (f"; the forward signal already shrank {fmt(1 / scale['ratio'])}x at initialisation" if shrunk else ""))
        return self.finding(msg, evidence, location=last.names[0], step=hits[0].step)

    def _through(self) -> str:
        activation, _ = self._activation_hint()
        if activation == "relu":
            return ""
        return f", through a stack of saturating {activation} activations"

    def _exploding(self, history: list[_Sample], event: StepEvent) -> Finding | None:
        big = [s for s in history if s.norms[-1] > 0 and s.norms[0] / s.norms[-1] > EXPLODE_RATIO]
        spikes = [s for s in history if s.norms[0] >= SPIKE_FIRST
                  and s.norms[0] > SPIKE_RATIO * max(s.norms[-1], 1e-30)]
        by_ratio = (len(big) >= MIN_STEPS and len(big) >= 0.6 * len(history)) or bool(spikes)
        if spikes and not (len(big) >= MIN_STEPS and len(big) >= 0.6 * len(history)):
            big = spikes  # one direct measurement this extreme needs no repetition
        early = [s.total for s in history[:3] if s.total > 0]
        base = statistics.median(early) if early else 0.0
        grown = [s for s in history[3:] if base > 0 and s.total >= GROWTH * base]
        by_growth = len(grown) >= 2
        if not by_ratio and by_growth and type(event.optimizer).__name__ in ADAPTIVE \
                and self._harmless_growth(history[min(2, len(history) - 1)].step, grown[0].step, event.step):
            by_growth = False  # an adaptive update does not grow with the gradient: no harm while it learns
        if not (by_ratio or by_growth):
            return None
        last = (big or grown)[-1]
        evidence = self._evidence(last, big or grown, history)
        evidence.update({"first_total": fmt(base), "latest_total": fmt(history[-1].total)})
        if by_ratio:
            ratio = statistics.median(s.norms[0] / s.norms[-1] for s in big)
            evidence["ratio"] = ratio
            when = (f"at {len(big)} of {len(history)} sampled steps" if len(big) >= MIN_STEPS
                    else f"at step {big[0].step} (one step this extreme usually wrecks the weights: "
                         f"the next gradients are NaN or zero)")
            msg = (f"gradients explode towards the input: {last.names[0]} gets a gradient norm of "
                   f"{fmt(last.norms[0])}, {fmt(ratio)}x that of {last.names[-1]} ({fmt(last.norms[-1])}), "
                   f"{when}")
            first = big[0].step
        else:
            growth = max(s.total for s in grown) / base
            evidence["growth"] = growth
            msg = (f"gradients explode: the total gradient norm grew {fmt(growth)}x, from {fmt(base)} "
                   f"over the first sampled steps to {fmt(grown[-1].total)} at step {grown[-1].step}")
            first = grown[0].step
        return self.finding(msg, evidence, location=last.names[0], code="grad.exploding-gradients",
                            step=first)

    def _harmless_growth(self, early_step: int, grown_step: int, step: int) -> bool:
        """Under an adaptive optimizer: no harm shown (yet) by a total gradient norm that grew.
        Harm is a non-finite loss, a loss far (10x) above the first sampled steps', or, once
        ``AFTER_GROWTH`` losses came after the first grown step, a recent loss (median of the last
        ``RECENT_LOSSES``) not clearly below the first sampled steps' median."""
        steps, values = self.state.losses.series()
        if not all(math.isfinite(v) for v in values):
            return False
        early = [v for s, v in zip(steps, values) if s <= early_step]
        after = [v for s, v in zip(steps, values) if grown_step <= s <= step]
        if not early or not after:
            return not after and bool(early)
        first, now = statistics.median(early), statistics.median(after[-RECENT_LOSSES:])
        if abs(now) > BLOWN_UP * max(abs(first), 1e-12):
            return False
        if len(after) < AFTER_GROWTH:
            return True  # too early to tell: judged again at the next sampled steps
        return now < first - LOSS_FALLING * abs(first)

    def _evidence(self, last: _Sample, hits: list[_Sample], history: list[_Sample]) -> dict[str, Any]:
        shown = list(zip(last.names, (fmt(v) for v in last.norms)))
        if len(shown) > MAX_LAYERS_SHOWN:
            half = MAX_LAYERS_SHOWN // 2
            shown = shown[:half] + [("...", "")] + shown[-half:]
        activation, init_hint = self._activation_hint()
        return {
            "first_layer": last.names[0],
            "last_layer": last.names[-1],
            "first_norm": last.norms[0],
            "last_norm": last.norms[-1],
            "layer_grad_norms": [f"{n}: {v}" if v else n for n, v in shown],
            "steps": [s.step for s in hits][-8:],
            "sampled_steps": len(history),
            "depth": len(last.names),
            "activation": activation,
            "init_hint": init_hint,
            "activation_fix": (f"Replace the saturating {activation} activations with ReLU/GELU"
                               if activation != "relu" else "Check the weight scale of the ReLU layers"),
            "optimizer_step": last.step,
        }

    def _activation_hint(self) -> tuple[str, str]:
        counts: dict[str, int] = {}
        for _, model in self.state.live_models():
            for sub in model.modules():
                for cls, label in _SATURATING.items():
                    if isinstance(sub, cls):
                        counts[label] = counts.get(label, 0) + 1
                if isinstance(sub, (nn.ReLU, nn.LeakyReLU, nn.GELU, nn.SiLU, nn.ELU)):
                    counts["relu"] = counts.get("relu", 0) + 1
        if not counts:
            return "sigmoid/tanh", "kaiming_normal_ for ReLU, xavier_normal_ for tanh/sigmoid"
        label = max(counts, key=lambda k: counts[k])
        if label == "relu":
            return "relu", "nn.init.kaiming_normal_(w, nonlinearity='relu')"
        return label, f"nn.init.xavier_normal_(w, gain=nn.init.calculate_gain('{label}'))"
