"""activation: dead ReLUs and saturated tanh/sigmoid units, measured on sampled steps.

ReLU/sigmoid/tanh calls are seen as ``op`` events in both styles (``nn.ReLU`` modules and
``F.relu`` / ``torch.sigmoid`` / ``x.tanh()`` in a forward); the layer whose units they
act on is found from the ``module_output`` events (the module that produced the input). A layer
written without a module (``torch.tanh(x @ W1 + b1)``, ``F.linear(x, w)``, weights in a list or on
the root model) is found from the autograd graph instead and named by its weight
(:mod:`nndoctor.monitor.checks._loose_layers`); it is judged once the backward pass shows its
activation feeding a later weighted op (a hidden layer), never as the network's output.

* dead ReLU: a unit whose output is 0 for every sample in the newest sampled training
  batches (~96 positions, at least 64); a layer warns when >= 60% of its units are
  dead at 3 consecutive sampled steps (DeepDiagnosis and SageMaker use 50-70%); a narrow
  layer of fewer than 4 units only when all of them are (then no signal passes it at all).
* saturation: > 50% of the pre-activations where the local derivative is below 1% of its
  maximum (|x| > 3 for tanh, |x| > 5.3 for sigmoid; DeepDiagnosis uses +-5), at 3
  consecutive sampled steps, for hidden activations only (an output sigmoid may be
  confident). A tanh inside a smooth self-gated activation is not a saturating unit: the
  tanh approximation of GELU, ``0.5*x*(1 + tanh(sqrt(2/pi)*(x + 0.044715*x^3)))`` (minGPT /
  makemore ``NewGELU``, ``gelu_new``), and Mish, ``x*tanh(softplus(x))``, pass the gradient
  of large positive inputs whole. Such a tanh is recognised once per site from its input:
  a softplus, or the cubic GELU argument of a tensor in the input's autograd graph.
  (``F.gelu(approximate='tanh')`` is one ``gelu`` call: never seen as a tanh.)
  A saturated tanh or sigmoid whose output is multiplied by another activation's that is not
  saturated (a gated unit, ``tanh(a) * sigmoid(b)`` in WaveNet / PixelCNN / a hand-written LSTM
  cell; found in the loss's autograd graph, :mod:`._gates`) is ``info``: the gradient reaches
  the layers before it through the gate. Both members saturated still warn.

When a layer first looks suspicious the check asks the observer to sample the next few
steps densely, so the evidence comes from consecutive batches.

Per-call work stays on the device; one host transfer per sampled step.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Iterable

import torch

from nndoctor.checks import Check, register
from nndoctor.findings import Finding, Severity
from nndoctor.monitor.checks._gates import gate_pairs
from nndoctor.monitor.checks._layers import Producers, fmt, host_floats, unit_dims
from nndoctor.monitor.checks._loose_layers import HiddenTracker, weight_of
from nndoctor.monitor.curves import analyze_losses
from nndoctor.monitor.events import BackwardCall, LossCall, ModuleOutput, OpCall, StepEvent
from nndoctor.monitor.functions import user_site
from nndoctor.monitor.loss_floor import SoftTargetFloor
from nndoctor.report.sections import ActivationHealth as ActivationHealthSection

__all__ = ["HELD_KEY", "SERIES_KEY", "ActivationHealth", "self_gated_tanh"]

logger = logging.getLogger("nndoctor")

DEAD_SHARE = 0.6
SATURATED_SHARE = 0.5
#: |pre-activation| beyond which the derivative is < 1% of its maximum
SATURATION_INPUT = {"tanh": 3.0, "sigmoid": 5.3}
#: for in-place calls: output this close to a bound (tanh: |x| > 3.8, sigmoid: |x| > 6.9)
SATURATION_OUTPUT = 1e-3
STREAK = 3
WINDOW = 8  # sampled batches kept per layer
TARGET_POSITIONS = 96  # samples (x spatial positions) a dead unit must stay silent for...
MIN_POSITIONS = 64  # ...and the least that is judged at all
MIN_UNITS = 4
#: ``state.extra`` key of the per-layer shares recorded for the report (an ActivationHealth section)
SERIES_KEY = "nndoctor.activation_health"
#: ``state.extra`` key of the saturation warnings held to the end of the run (see :func:`_held`)
HELD_KEY = "nndoctor.held_saturation"
#: a dead-ReLU finding is info only when this many units live on and the training loss is below
#: this share of a constant prediction's (or of its first value, when that is unknown)
MIN_LIVE_UNITS = 16
LEARNED_SHARE = 0.3
MIN_LOSSES = 50  # recorded losses before such a layer is judged
FALLING_SHARE = 0.6  # a wide layer's loss this far below its first value waits for the end of the run
#: fewer live units (NARROW_MIN_LIVE to MIN_LIVE_UNITS - 1) need a loss this far below the constant
#: prediction's (a known baseline, not the first loss), judged late: from NARROW_MIN_LOSSES
#: losses on or at the end of the run (a 10-unit layer on a 1-D regression that lost 6 units
#: to a big early update and fits well anyway, at <= 10% of the constant's loss; one that
#: lost its fit stays at >= 60% of it)
NARROW_LEARNED_SHARE = 0.15
NARROW_MIN_LOSSES = 200
NARROW_MIN_LIVE = 2

#: the GELU tanh approximation: tanh(GELU_SCALE * (x + GELU_CUBIC * x**3))
GELU_SCALE = math.sqrt(2.0 / math.pi)
GELU_CUBIC = 0.044715
GATE_DEPTH = 6  # autograd nodes searched above a tanh's input for the GELU argument's x
GATE_WALKS = 2  # graph walks per suspicious tanh/sigmoid site looking for a gating product

_RELU = frozenset({"relu", "relu_", "relu6"})
_SATURATING = frozenset({"sigmoid", "sigmoid_", "tanh", "tanh_"})


@dataclass
class _Layer:
    """What one activation site has shown so far."""

    op: str
    site: str
    units: int = 0
    window: deque = field(default_factory=lambda: deque(maxlen=WINDOW))  # (mask, positions, step)
    window_start: int = 0  # step of the oldest batch behind the latest dead-unit share
    starts: dict[int, int] = field(default_factory=dict)  # judged step -> its window_start (bounded)
    pending_mask: torch.Tensor | None = None
    pending_positions: int = 0
    pending_sat: list[torch.Tensor] = field(default_factory=list)
    pending_total: int = 0
    streak: int = 0
    shares: list[tuple[int, float]] = field(default_factory=list)
    calls_at: int = -1  # parameterised-layer counter at the last call (output detection)
    output: bool = False
    reported: bool = False
    boosts: int = 0
    positions: int = 0  # positions behind the latest dead-unit share
    gated: bool = False  # a tanh inside GELU-tanh / Mish: not a saturating unit
    last_count: int = -1  # dead units at the latest judged step (a deferred report uses it)
    residual: bool = False  # its output is added to its block's input (x + act(layer(x)))
    loose: bool = False  # a layer without a module (act(x @ w + b)): judged once seen to be hidden
    partners: set = field(default_factory=set)  # sites whose output multiplies this one's (a gate)
    gate_walks: int = 0  # graph walks spent looking for such a product


def _limit(layer: _Layer) -> float:
    """The share of dead (or saturated) units that counts: a narrow ReLU layer (fewer than
    MIN_UNITS units) only when every unit is dead, as then no signal passes it at all."""
    if layer.op not in ("relu", "relu6"):
        return SATURATED_SHARE
    return 1.0 if layer.units < MIN_UNITS else DEAD_SHARE


def _saved_tensors(node: Any) -> list[torch.Tensor]:
    out = []
    for name in dir(node):
        if name.startswith("_saved_") and not name.endswith("_raw"):
            try:
                value = getattr(node, name)
            except RuntimeError:  # freed
                continue
            if isinstance(value, torch.Tensor):
                out.append(value)
    return out


def self_gated_tanh(inp: torch.Tensor | None) -> bool:
    """Whether a tanh of ``inp`` is the inner tanh of a GELU approximation or of Mish: ``inp``
    is a softplus output, or ``sqrt(2/pi)*(x + 0.044715*x^3)`` of some ``x`` saved in its graph."""
    if inp is None or inp.grad_fn is None:
        return False
    root = inp.grad_fn
    if type(root).__name__.startswith("Softplus"):
        return True
    u = inp.detach().float()
    seen: set[int] = set()
    frontier = [root]
    for _ in range(GATE_DEPTH):
        nxt = []
        for node in frontier:
            if node is None or id(node) in seen:
                continue
            seen.add(id(node))
            for x in _saved_tensors(node):
                if x.shape == inp.shape and x.is_floating_point():
                    xf = x.detach().float()
                    if torch.allclose(u, GELU_SCALE * (xf + GELU_CUBIC * xf ** 3), rtol=1e-3, atol=1e-4):
                        return True
            nxt.extend(fn for fn, _ in node.next_functions)
        frontier = nxt
    return False


def _held(found: Finding, layer: _Layer) -> bool:
    """A saturation warning on a wide layer: said at the end of the run (with its first steps), once the
    loss shows whether the model learned despite it."""
    return (found.code == "activation.saturated" and found.severity is Severity.WARNING
            and layer.units >= MIN_LIVE_UNITS)


@register
class ActivationHealth(Check):
    """Hidden ReLU units that never fire, or sigmoid/tanh units stuck at their bounds."""

    code = "activation.dead-relu"
    needs = ("op", "module_output", "step", "end", "loss", "backward")
    step_phases = frozenset({"pre"})
    sampled_only = frozenset({"step", "backward"})
    ops = _RELU | _SATURATING
    extra_codes = ("activation.saturated",)

    def __init__(self, state: Any) -> None:
        super().__init__(state)
        self.producers = Producers()
        self.layers: dict[tuple[str, str, int], _Layer] = {}
        self.param_calls = 0
        self.touched: set[tuple[str, str, int]] = set()
        self.health = self.state.extra.setdefault(SERIES_KEY, ActivationHealthSection())
        self._act_nodes: dict[int, tuple[str, str, int]] = {}  # tanh/sigmoid output node -> layer
        self._floor = SoftTargetFloor()  # the loss a perfect model still pays (soft BCE targets)
        self._module_weights: set[int] = set()  # ids of the parameters of layer modules that ran
        self._held_saturation: list[tuple[Finding, int]] = []  # wide layers' saturation warnings, said at the end
        self._loose = HiddenTracker()  # outputs of activations of module-less layers, this step

    def check(self, event: Any) -> Iterable[Finding]:
        kind = event.kind
        if kind == "op":
            self._on_op(event)
            return ()
        if kind == "module_output":
            self._on_module(event)
            return ()
        if kind == "step" and event.phase == "pre" and self.touched:
            return self._judge(event)
        if kind == "end":
            return self._at_end()
        if kind == "loss":
            self._on_loss(event)
        elif kind == "backward":
            self._on_backward(event)
        return ()

    def _on_backward(self, event: BackwardCall) -> None:
        """Module-less layers whose activation feeds a later weighted op are hidden: judged. A
        saturating site that looks saturated is looked up in the graph once or twice: is its output
        multiplied by another activation's (a gated unit, :mod:`._gates`)?"""
        for key in self._loose.hidden(event.tensor):
            layer = self.layers.get(key)
            if layer is not None:
                layer.output = False
        suspects = [self.layers[k] for k in self.touched if k[1] in ("tanh", "sigmoid") and self.layers[k].streak
                    and self.layers[k].gate_walks < GATE_WALKS]
        if not suspects or not self._act_nodes:
            return
        for layer in suspects:
            layer.gate_walks += 1
        for a, b in gate_pairs(event.tensor, self._act_nodes):
            if a in self.layers and b in self.layers:
                self.layers[a].partners.add(b)
                self.layers[b].partners.add(a)

    def _on_loss(self, event: LossCall) -> None:
        self._floor.see(event.name, event.target, event.kwargs, event.grad_enabled)

    # ------------------------------------------------------------------ observing
    def _on_module(self, event: ModuleOutput) -> None:
        module = event.module
        if not event.grad_enabled:
            return
        if id(module) in self.state.models:
            # end of a root forward: activations after the last weighted layer are outputs
            for layer in self.layers.values():
                if layer.calls_at == self.param_calls and layer.calls_at >= 0 and not layer.loose:
                    layer.output = True
            return
        self.producers.see(module, event.name, event.inputs, event.output)
        if module._parameters and any(p is not None for p in module._parameters.values()):
            if len(self._module_weights) < 4096:
                self._module_weights.update(id(p) for p in module._parameters.values() if p is not None)
            self.param_calls += 1
            if self._act_nodes:
                self._see_residual(event.inputs)

    def _see_residual(self, inputs: Any) -> None:
        """A layer's input is ``x + act(...)``: that activation sits on a residual branch."""
        x = inputs[0] if isinstance(inputs, (tuple, list)) and inputs else inputs
        node = getattr(x, "grad_fn", None)
        if node is None or type(node).__name__ != "AddBackward0":
            return
        branches = [n for n, _ in node.next_functions]
        if len(branches) == 2 and all(b is not None for b in branches):
            for b in branches:
                key = self._act_nodes.get(id(b))
                if key is not None and key in self.layers:
                    self.layers[key].residual = True

    def _on_op(self, event: OpCall) -> None:
        out = event.result
        if not isinstance(out, torch.Tensor) or not out.requires_grad:
            return  # evaluation
        if not out.is_floating_point() or out.dim() < 2 or out.numel() == 0:
            return
        inp = event.args[0] if event.args and isinstance(event.args[0], torch.Tensor) else None
        site = self.producers.name_of(inp)
        weight = None if site else weight_of(inp)
        if weight is not None and id(weight) in self._module_weights:
            weight = None  # a layer module's weight (a residual sum): judged as before
        if not (site or event.module or weight is not None):
            return  # an activation outside any model and after no layer (an output transform)
        unit, dims = unit_dims(out, self.producers.channels_first(inp))
        units = out.shape[unit]
        op = event.name.rstrip("_")
        if units < MIN_UNITS and op not in ("relu", "relu6"):
            return  # a narrow ReLU layer is judged, on all of its units (see _limit)
        if weight is not None:  # x @ w + b without a module: the layer is named by its weight
            site = self.state.param_name(weight)
        site = site or event.module
        key = (site, op, units)
        layer = self.layers.get(key)
        if layer is None:
            where = event.module if weight is None else (user_site() or event.module or site)
            layer = self.layers[key] = _Layer(op=op, site=where, units=units, loose=weight is not None)
            layer.output = layer.loose  # until a weighted op is seen to consume it
            layer.gated = op == "tanh" and self_gated_tanh(inp)
        if layer.gated:
            return
        if layer.loose:
            self._loose.record(out, key)
        layer.calls_at = self.param_calls
        self.touched.add(key)
        positions = out.numel() // units
        if op in ("relu", "relu6"):
            active = out.detach().amax(dim=dims) > 0
            layer.pending_mask = active if layer.pending_mask is None else layer.pending_mask | active
            layer.pending_positions += positions
        else:
            if out.grad_fn is not None and len(self._act_nodes) < 512:
                self._act_nodes[id(out.grad_fn)] = key
            if inp is not None and inp is not out and inp.shape == out.shape:
                sat = (inp.detach().abs() > SATURATION_INPUT[op]).sum()
            else:  # in place: judge by the output's distance to the bounds
                o = out.detach()
                low = 0.0 if op == "sigmoid" else -1.0
                sat = ((o - low < SATURATION_OUTPUT) | (1.0 - o < SATURATION_OUTPUT)).sum()
            layer.pending_sat.append(sat)
            layer.pending_total += out.numel()

    # ------------------------------------------------------------------ judging
    def _judge(self, event: StepEvent) -> list[Finding]:
        keys = sorted(self.touched)
        self.touched.clear()
        self._act_nodes.clear()
        self._loose.clear()
        values: list[torch.Tensor] = []
        plan: list[tuple[tuple[str, str, int], int]] = []  # key, denominator
        for key in keys:
            layer = self.layers[key]
            if layer.pending_mask is not None:
                layer.window.append((layer.pending_mask, layer.pending_positions, event.step))
                layer.pending_mask, layer.pending_positions = None, 0
                recent = self._recent(layer)
                if recent and not layer.output:
                    ever = recent[0]
                    for mask in recent[1:]:
                        ever = ever | mask.to(ever.device)
                    values.append((~ever).sum())
                    plan.append((key, layer.units))
            elif layer.pending_sat:
                total = layer.pending_total
                sat = layer.pending_sat
                layer.pending_sat, layer.pending_total = [], 0
                if not layer.output:
                    values.append(torch.stack([s.to(sat[0].device) for s in sat]).sum())
                    plan.append((key, total))
        if not values:
            return []
        counts = host_floats(values)
        out: list[Finding] = []
        for (key, denom), count in zip(plan, counts):
            layer = self.layers[key]
            share = count / denom if denom else 0.0
            layer.shares.append((event.step, share))
            del layer.shares[:-16]
            layer.starts[event.step] = layer.window_start if layer.op in ("relu", "relu6") else event.step
            for old_step in [k for k in layer.starts if k < layer.shares[0][0]]:
                del layer.starts[old_step]
            if not layer.output:  # the report's per-layer chart (bounded)
                self.health.record(key[0], layer.op, event.step, share)
            limit = _limit(layer)
            layer.streak = layer.streak + 1 if share >= limit else 0
            if layer.streak == 1 and layer.boosts < 3 and not layer.reported and self.state.observer:
                layer.boosts += 1
                self.state.observer.boost(STREAK)
            if layer.streak >= STREAK and not layer.reported and not layer.output:
                layer.last_count = int(count)
                if self._defer(layer, int(count)):
                    continue  # judged again on the next sampled step, or at the end of the run
                layer.reported = True
                found = self._finding(key, layer, int(count))
                if _held(found, layer):
                    self._held_saturation.append((found, layer.units))
                    self.state.extra.setdefault(HELD_KEY, []).append(found)  # (the lr check reads it now)
                    continue  # said at the end of the run: whether the model learned despite it
                out.append(found)
        return out

    def _defer(self, layer: _Layer, count: int) -> bool:
        """Dead units of a layer with many live ones wait until the loss shows whether the model
        learns anyway (a wide layer on 1-D inputs has most units silent from the start)."""
        live = layer.units - count
        if layer.op not in ("relu", "relu6") or live < NARROW_MIN_LIVE:
            return False
        curve = analyze_losses(self.state)
        if curve.n < (MIN_LOSSES if live >= MIN_LIVE_UNITS else NARROW_MIN_LOSSES):
            return True
        # a wide layer whose loss is still coming down well: the end of the run tells whether the
        # live units suffice (a loss already at most FALLING_SHARE of its first value)
        if not (live >= MIN_LIVE_UNITS and self._learning_anyway(live) is None and math.isfinite(curve.end)
                and curve.initial > 0 and curve.end >= 0):
            return False
        floor = self._floor.floor(curve.end, curve.initial)  # (soft BCE targets: the part above it)
        return curve.end - floor <= FALLING_SHARE * (curve.initial - floor)

    def _at_end(self) -> list[Finding]:
        out = [self._saturation_verdict(found, units) for found, units in self._held_saturation]
        self._held_saturation = []
        self.state.extra.pop(HELD_KEY, None)
        for key, layer in self.layers.items():
            if layer.streak >= STREAK and not layer.reported and not layer.output and layer.last_count >= 0:
                layer.reported = True
                found = self._finding(key, layer, layer.last_count, final=True)
                out.append(self._saturation_verdict(found, layer.units) if _held(found, layer) else found)
        return out

    def _saturation_verdict(self, found: Finding, units: int) -> Finding:
        """A wide layer's saturation warning, judged at the end of the run: info when the loss came down
        far anyway (:meth:`_learning_anyway`): saturation is a problem when it keeps the model from
        learning (a hand-written RNN cell on raw observations saturates and trains well)."""
        learning = self._learning_anyway(units)
        if not learning:
            return found
        cut = found.message.rfind(": saturated units pass")
        head = found.message[:cut] if cut > 0 else found.message
        return dataclasses.replace(
            found, severity=Severity.INFO, evidence={**found.evidence, "learning_anyway": learning},
            message=f"{head}, yet {learning}: the saturated units did not keep this model from learning "
                    f"(normalising the layer's inputs may still speed it up)")

    def _learning_anyway(self, live: int) -> str | None:
        """How the training loss already beats a constant prediction by far (None: it does not).

        Dead units are a problem when they keep the model from learning; with enough live units
        and a loss far below the constant prediction's (or its own first value), they are not.
        A few live units (NARROW_MIN_LIVE or more) need a loss much further below a known constant
        prediction's (NARROW_LEARNED_SHARE).
        """
        if live < NARROW_MIN_LIVE:
            return None
        wide = live >= MIN_LIVE_UNITS
        curve = analyze_losses(self.state)
        end, first = curve.end, curve.initial
        if curve.n < MIN_LOSSES or not (math.isfinite(end) and math.isfinite(first)) or end < 0 or first <= 0:
            return None
        base = self.state.extra.get("nndoctor.loss_baseline")
        known = isinstance(base, (int, float)) and base > 0
        # soft BCE targets: only the part above their entropy can be learned (loss_floor.py)
        floor = self._floor.floor(end, first, *((base,) if known else ()))
        above = (f" (above the {floor:.3g} that the soft targets' entropy costs even a perfect model)"
                 if floor else "")
        if known:
            share = LEARNED_SHARE if wide else NARROW_LEARNED_SHARE
            return (f"the loss ({end:.3g}) is already {(end - floor) / (base - floor):.0%} of a constant "
                    f"prediction's ({base:.3g}){above}") if end - floor <= share * (base - floor) else None
        if not wide:
            return None
        if end - floor > LEARNED_SHARE * (first - floor):
            return None
        part = f", to {(end - floor) / (first - floor):.0%} of its start{above}" if floor else ""
        return f"the loss fell from {first:.3g} to {end:.3g}{part}"

    def _open_partners(self, layer: _Layer) -> list[str]:
        """The activations multiplied with ``layer``'s output (a gate) that are not saturated at their
        latest judged step (a pair that saturates together passes no gradient at all)."""
        out = []
        for key in sorted(layer.partners):
            partner = self.layers.get(key)
            if partner is None or not partner.shares or partner.op not in ("tanh", "sigmoid"):
                continue
            if partner.shares[-1][1] < _limit(partner):
                out.append(f"{partner.op} of {key[0]}")
        return out

    @staticmethod
    def _recent(layer: _Layer) -> list[torch.Tensor]:
        """Masks of the newest sampled batches covering TARGET_POSITIONS (at least MIN_POSITIONS)."""
        masks, positions = [], 0
        for mask, count, step in reversed(layer.window):
            masks.append(mask)
            positions += count
            layer.window_start = step
            if positions >= TARGET_POSITIONS:
                break
        layer.positions = positions
        return masks if positions >= MIN_POSITIONS else []

    def _finding(self, key: tuple[str, str, int], layer: _Layer, count: int, final: bool = False) -> Finding:
        location, op, units = key
        recent = layer.shares[-STREAK:]
        steps = [s for s, _ in recent]
        share = recent[-1][1]
        evidence: dict[str, Any] = {
            "layer": location,
            "activation": op,
            "activation_site": layer.site,
            "units": units,
            "share": round(share, 3),
            "shares": [round(v, 3) for _, v in recent],
            "steps": steps,
        }
        if op in ("relu", "relu6"):
            positions = layer.positions
            evidence.update({"dead_units": count, "positions": positions})
            msg = (f"{share:.0%} of the {units} units of {location} never activate: the {op} after it "
                   f"(called in {layer.site}) outputs 0 at every one of the last {positions} positions, "
                   f"at steps {steps[0]}-{steps[-1]}; dead units get no gradient and rarely recover")
            learning = self._learning_anyway(units - count)
            losses = analyze_losses(self.state).n
            if not learning and final and units - count >= MIN_LIVE_UNITS and losses < MIN_LOSSES:
                # the run ended before its loss could show whether the many live units suffice
                evidence["run_too_short"] = True
                return self.finding(f"{msg}; {units - count} units live on and the run ended after "
                                    f"{losses} losses, too few to tell whether they "
                                    f"suffice", evidence, location=location, step=steps[0], severity=Severity.INFO)
            if learning:  # a wide layer on simple data (a 1-D regression): the live units do the job
                evidence["learning_anyway"] = learning
                return self.finding(f"{msg}; {learning}, so the {units - count} live units suffice here",
                                    evidence, location=location, step=steps[0], severity=Severity.INFO)
            # the first dead share covers the batches since its window's oldest one: dead from then on
            return self.finding(msg, evidence, location=location, step=layer.starts.get(steps[0], steps[0]))
        bound = SATURATION_INPUT[op]
        evidence["criterion"] = (f"|pre-activation| > {fmt(bound)}, where the {op} derivative is < 1% "
                                 f"of its maximum (in-place calls: output within {fmt(SATURATION_OUTPUT)} "
                                 f"of the bounds)")
        msg = (f"{share:.0%} of the {op} pre-activations of {location} ({units} units, {op} at "
               f"{layer.site}) are beyond +-{fmt(bound)} at steps {steps[0]}-{steps[-1]}")
        if layer.residual:  # x + tanh(layer(x)): the skip connection carries the gradient past it
            evidence["residual_branch"] = True
            return self.finding(f"{msg}; they sit on a residual branch (x + {op}(...)), so the skip connection "
                                f"still carries the gradient to the layers before them", evidence,
                                location=location, code="activation.saturated", step=steps[0],
                                severity=Severity.INFO)
        open_gates = self._open_partners(layer)
        if open_gates:  # tanh(a) * sigmoid(b): the gradient passes through the partner that is not saturated
            evidence["gated_by"] = open_gates
            return self.finding(f"{msg}; its output is multiplied by the {' and '.join(open_gates)} (a gated unit, "
                                f"tanh(a) * sigmoid(b)), which is not saturated: the gradient reaches the layers "
                                f"before them through that gate, so saturated {op} units are normal here",
                                evidence, location=location, code="activation.saturated", step=steps[0],
                                severity=Severity.INFO)
        msg += ": saturated units pass < 1% of the gradient, so the layers before them barely learn"
        return self.finding(msg, evidence, location=location, code="activation.saturated", step=steps[0])
