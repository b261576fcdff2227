"""init: constant or symmetric weights, and initial scales that vanish or explode with depth.

Both are read at the start of training, before the first update:

* at the first ``step`` pre event of each optimizer its weight matrices are still as
  initialised: a matrix whose rows (units / filters) are all identical gives every unit
  the same output and the same gradient, so units can never differ;
* during the first training forward the output spread across the batch (std over the
  samples, averaged over units: the input-dependent signal, bias offsets excluded) of
  every weighted layer is taken (``module_output``); a custom initialisation under which it shrinks or grows by orders
  of magnitude from the first to the last layer is reported with the better scheme for
  the activation seen (``op`` events: He/kaiming for ReLU, Glorot/xavier for tanh/sigmoid);
  ReLU layers (two or more) whose custom weights are all several times He's scale are reported
  too when the signal grows through them to a model output of root mean square >= 20, however
  shallow the network (``nn.init.normal_(w)`` at its default std 1).

PyTorch's default initialisation is recognised and never reported for its scale.

A constant matrix that no linear map uses as it is, in a module whose linear maps run with weights
that differ between units, does not make units copies: it parameterises the weights (the ``rho`` /
log-std of a Bayes-by-backprop layer, constant by design next to random means, enters as
``softplus(rho)``). The linear-map calls of the first training forward (``op`` events) tell which
parameters are used as weights directly and whether the weights each module used differ by unit.
"""

from __future__ import annotations

import logging
import math
from typing import Any, Iterable

import torch
import torch.nn as nn

from nndoctor.checks import Check, register
from nndoctor.findings import Finding, Severity
from nndoctor.monitor.checks._layers import LayerOrder, fmt, host_floats, weight_params
from nndoctor.monitor.events import ModuleOutput, OpCall, StepEvent
from nndoctor.monitor.tensors import local

__all__ = ["InitCheck"]

logger = logging.getLogger("nndoctor")

SCALE_RATIO = 1e2  # first -> last layer output std change that counts as vanishing/exploding
MIN_LAYERS = 3
SATURATING_SCALE = 3.0  # weight std x sqrt(fan_in): this far above 1 drives tanh/sigmoid into saturation
SATURATING_STD = 2.5  # pre-activation root mean square beyond which tanh/sigmoid pass < ~7% of their gradient
DEFAULT_BAND = (0.6, 1.6)  # weight std / PyTorch's default std that still counts as default
OVERSIZED_SCALE = 4.0  # weight std x sqrt(fan_in) (He: 1.41) at or above which a ReLU layer's weights are oversized
OVERSIZED_GROWTH = 5.0  # ... and the signal must grow at least this much from the first to the last layer
OVERSIZED_OUTPUT = 20.0  # ... to a model output whose root mean square is at least this

#: ops that apply a weight as a linear map (weight argument: the second)
_LINEAR_MAPS = frozenset({"linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d",
                          "conv_transpose3d", "bilinear", "matmul", "mm", "addmm"})

_ACTIVATIONS = {"relu": "relu", "relu_": "relu", "relu6": "relu", "leaky_relu": "relu", "elu": "relu",
                "gelu": "relu", "silu": "relu", "tanh": "tanh", "tanh_": "tanh", "sigmoid": "sigmoid",
                "sigmoid_": "sigmoid", "selu": "selu", "selu_": "selu"}


def _scheme(activation: str) -> str:
    if activation == "relu":
        return "nn.init.kaiming_normal_(w, nonlinearity='relu') (He init)"
    if activation in ("tanh", "sigmoid"):
        return f"nn.init.xavier_normal_(w, gain=nn.init.calculate_gain('{activation}')) (Glorot init)"
    if activation == "selu":
        return "nn.init.kaiming_normal_(w, nonlinearity='linear') (LeCun init, what SELU is made for)"
    return "nn.init.kaiming_normal_ for ReLU layers, nn.init.xavier_normal_ for tanh/sigmoid layers"


def _relative_scale(weight: torch.Tensor, std: float) -> float | None:
    """The weight std in units of 1/sqrt(fan_in) (Glorot ~1, He ~1.4), None for fan-ins below 4."""
    fan_in = math.prod(weight.shape[1:]) if weight.dim() >= 2 else 0
    return std * math.sqrt(fan_in) if fan_in >= 4 else None


@register
class InitCheck(Check):
    """Weights that start constant/symmetric, or a weight scale that wrecks the signal with depth."""

    code = "init.constant-weights"
    needs = ("module_output", "op", "step")
    step_phases = frozenset({"pre"})
    sampled_only = frozenset({"step"})
    ops = frozenset(_ACTIVATIONS) | _LINEAR_MAPS
    extra_codes = ("init.symmetric-weights", "init.activation-scale")

    def __init__(self, state: Any) -> None:
        super().__init__(state)
        self.order = LayerOrder()
        self.stds: dict[str, torch.Tensor] = {}  # layer name -> output std, first training forward
        self.layer_weights: dict[str, torch.Tensor] = {}  # name -> a weight (to read its init scale)
        self.weight_stds: dict[str, torch.Tensor] = {}  # name -> that weight's std (on its device)
        self.rms: dict[str, torch.Tensor] = {}  # name -> root mean square output (saturation: offsets count)
        self.activations: dict[str, int] = {}
        self.seen_optimizers: set[int] = set()
        self.scale_done = False
        self.direct: set[int] = set()  # parameters a linear map used as they are (first forward)
        # per module: the weights its linear maps used, as "spread between units" probes (0: copies)
        self.used_weights: dict[str, list[torch.Tensor]] = {}

    def check(self, event: Any) -> Iterable[Finding]:
        if event.kind == "module_output":
            self._on_module(event)
        elif event.kind == "op":
            self._on_op(event)
        elif event.kind == "step" and event.phase == "pre" and id(event.optimizer) not in self.seen_optimizers:
            self.seen_optimizers.add(id(event.optimizer))
            return self._on_first_step(event)
        return ()

    # ------------------------------------------------------------------ observing
    def _first_forward(self) -> bool:
        return not self.seen_optimizers and self.state.step == 1

    def _on_module(self, event: ModuleOutput) -> None:
        module = event.module
        if not module._parameters or not event.grad_enabled or not module.training:
            return
        self.order.see(module, event.name)
        if not self._first_forward() or event.name in self.stds:
            return
        mats = weight_params(module)
        out = event.output
        if mats and isinstance(out, torch.Tensor) and out.is_floating_point() and out.dim() >= 2 \
                and out.shape[0] >= 2:
            # spread across the batch: the input-dependent signal, not the bias offset
            self.stds[event.name] = out.detach().float().std(dim=0).mean()
            self.rms[event.name] = out.detach().float().square().mean().sqrt()
            weight = mats[0][1]
            self.layer_weights[event.name] = weight
            # read now: FSDP2 frees a layer's gathered weights after its forward (sharded: this rank's)
            w = local(weight).detach()
            self.weight_stds[event.name] = w.float().std() if w.numel() > 1 else w.new_zeros((), dtype=torch.float32)

    def _on_op(self, event: OpCall) -> None:
        if not self._first_forward():
            return
        kind = _ACTIVATIONS.get(event.name)
        if kind:
            self.activations[kind] = self.activations.get(kind, 0) + 1
        elif event.name in _LINEAR_MAPS:
            self._on_linear_map(event)

    def _on_linear_map(self, event: OpCall) -> None:
        args = [a for a in event.args if isinstance(a, torch.Tensor)]
        w = event.kwargs.get("weight", args[1] if len(args) >= 2 else None)
        if event.name == "addmm" and len(args) >= 3:
            w = args[2]
        for a in [*args, w]:
            if isinstance(a, nn.Parameter):
                self.direct.add(id(a))
        if not isinstance(w, torch.Tensor) or w.dim() < 2 or not event.module:
            return
        lw = local(w).detach()
        rows = lw.T if event.name in ("matmul", "mm", "addmm") and lw.dim() == 2 else lw.reshape(lw.shape[0], -1)
        if rows.shape[0] >= 2:
            probes = self.used_weights.setdefault(event.module, [])
            if len(probes) < 8:
                probes.append((rows - rows[:1]).abs().amax())

    def _activation(self) -> str:
        if not self.activations:
            return ""
        return max(self.activations, key=lambda k: self.activations[k])

    # ------------------------------------------------------------------ judging
    def _on_first_step(self, event: StepEvent) -> list[Finding]:
        params = [p for g in event.optimizer.param_groups for p in g["params"] if isinstance(p, torch.Tensor)]
        out = self._constant(params)
        if any(f.severity is Severity.ERROR for f in out):
            self.scale_done = True  # a constant network has no meaningful scale to judge
        if not self.scale_done and self.stds:
            self.scale_done = True
            found = self._scale()
            if found is not None:
                out.append(found)
        return out

    def _constant(self, params: list[torch.Tensor]) -> list[Finding]:
        # (sharded parameters: this rank's rows; a shard of fewer than 2 rows tells nothing)
        weights = [p for p in self.order.order(params) if local(p).dim() and local(p).shape[0] >= 2]
        if not weights:
            return []
        probes: list[torch.Tensor] = []
        for p in weights:
            lp = local(p).detach()
            w = lp.reshape(lp.shape[0], -1)
            probes.append((w - w[:1]).abs().amax())  # 0: identical rows
            probes.append((w - w.reshape(-1)[0]).abs().amax())  # 0: one value everywhere
            probes.append(w.reshape(-1)[0])
        values = host_floats(probes)
        rows = [(p, values[3 * i] == 0.0, values[3 * i + 1] == 0.0, values[3 * i + 2])
                for i, p in enumerate(weights)]
        names = [self.order.module_of(p) or self.state.param_name(p) for p in weights]
        scheme = _scheme(self._activation())
        symmetric = [i for i, (_, same, _, _) in enumerate(rows) if same]
        if symmetric and self.used_weights:
            varied = self._varied_modules()
            symmetric = [i for i in symmetric if id(weights[i]) in self.direct or not (
                varied & {names[i], names[i].split(".", 1)[-1]})]
        if not symmetric:
            return []
        if len(weights) >= 2 and len(symmetric) == len(weights):
            constant = [i for i in symmetric if rows[i][2]]
            values_txt = sorted({fmt(rows[i][3]) for i in constant})
            evidence = {"layers": names, "values": values_txt, "shapes": [tuple(p.shape) for p in weights],
                        "scheme": scheme, "symmetric_layers": len(symmetric)}
            what = (f"constant ({', '.join(values_txt[:4])})" if len(constant) == len(weights)
                    else "identical in every row/filter")
            msg = (f"all {len(weights)} weight layers ({names[0]} ... {names[-1]}) start {what}: every unit "
                   f"of a layer computes the same output and gets the same gradient, so the units can "
                   f"never become different and the network learns like one unit per layer")
            return [self.finding(msg, evidence, location=names[0], step=1)]
        out: list[Finding] = []
        for i in symmetric:
            p, _, constant, value = rows[i]
            last = i == len(weights) - 1
            if last or (constant and value == 0.0 and i != 0):
                continue  # zero/identical heads and zero-initialised branch ends are deliberate designs
            evidence = {"layers": names[i], "shape": tuple(p.shape), "value": fmt(value) if constant else "",
                        "scheme": scheme, "position": f"weight layer {i + 1} of {len(weights)}"}
            kind = f"constant ({fmt(value)})" if constant else "identical in every row"
            msg = (f"{names[i]} (weight {tuple(p.shape)}, layer {i + 1} of {len(weights)}) starts {kind}: its "
                   f"{p.shape[0]} units compute the same output, so they start as copies of one unit")
            code = "init.constant-weights" if constant else "init.symmetric-weights"
            out.append(self.finding(msg, evidence, location=names[i], code=code,
                                    severity=Severity.WARNING, step=1))
        return out

    def _varied_modules(self) -> set[str]:
        """Modules whose linear maps ran with weights that differ between units (first forward)."""
        items = [(m, p) for m, probes in self.used_weights.items() for p in probes]
        values = host_floats([p for _, p in items])
        return {m for (m, _), v in zip(items, values) if v > 0.0}

    def _scale(self) -> Finding | None:
        names = list(self.stds)
        if len(names) < 2:
            return None
        weights = [self.layer_weights[n] for n in names]
        values = host_floats([self.stds[n] for n in names] + [self.weight_stds[n] for n in names]
                             + [self.rms[n] for n in names])
        k = len(names)
        stds, wstds, rms = values[:k], values[k:2 * k], values[2 * k:]
        self.stds.clear()
        self.rms.clear()
        if not all(math.isfinite(s) and s > 0 for s in stds):
            return None
        ratio = stds[-1] / stds[0]
        gains = [b / a for a, b in zip(stds, stds[1:])]
        # shared with the gradient check: a signal that vanishes forward starves the gradients too
        self.state.extra["nndoctor.init_output_std"] = {"ratio": ratio, "first": names[0], "last": names[-1]}
        if len(names) < MIN_LAYERS or 1 / SCALE_RATIO <= ratio <= SCALE_RATIO:
            found = self._oversized(names, weights, stds, rms, wstds, ratio)
            if found is not None or len(names) < MIN_LAYERS:
                return found
            return self._saturating(names, weights, rms, wstds)
        shrinking = ratio < 1
        same_way = sum(1 for g in gains if (g < 1) == shrinking)
        if same_way < 0.7 * len(gains):
            return None
        custom = [n for n, w, ws in zip(names, weights, wstds) if not self._default_init(w, ws)]
        if len(custom) < len(names) / 2:
            return None  # PyTorch's default init: its shrinkage is documented behaviour
        activation = self._activation()
        scheme = _scheme(activation)
        per_layer = math.exp(math.log(ratio) / len(gains))
        evidence = {
            "layer_output_std": [f"{n}: {fmt(s)}" for n, s in zip(names, stds)],
            "ratio": ratio,
            "per_layer_gain": round(per_layer, 3),
            "depth": len(names),
            "activation": activation or "unknown",
            "scheme": scheme,
            "custom_initialised": custom,
        }
        trend = "shrinks" if shrinking else "grows"
        msg = (f"at initialisation the activation scale {trend} {fmt(1 / ratio if shrinking else ratio)}x "
               f"through {len(names)} layers (output std {fmt(stds[0])} at {names[0]} -> {fmt(stds[-1])} at "
               f"{names[-1]}, x{per_layer:.2g} per layer): the weight scale does not fit the "
               f"{activation or 'activation'} in use")
        return self.finding(msg, evidence, location=names[0], code="init.activation-scale",
                            severity=Severity.WARNING, step=1)

    def _saturating(self, names: list[str], weights: list[torch.Tensor], rms: list[float],
                    wstds: list[float]) -> Finding | None:
        """tanh/sigmoid bound the signal, so weights too large for them do not grow it with depth: they
        saturate every hidden layer instead (pre-activations spread far beyond the linear range)."""
        activation = self._activation()
        if activation not in ("tanh", "sigmoid"):
            return None
        hidden = []  # the layers feeding the activation: all but the output layer
        for n, w, s, ws in zip(names[:-1], weights[:-1], rms[:-1], wstds[:-1]):
            scale = _relative_scale(w, ws)
            if scale is not None:
                hidden.append((n, scale, s, self._default_init(w, ws)))
        big = [h for h in hidden if h[1] >= SATURATING_SCALE and h[2] >= SATURATING_STD and not h[3]]
        if len(hidden) < MIN_LAYERS - 1 or len(big) < max(2, 0.7 * len(hidden)):
            return None
        scheme = _scheme(activation)
        scale = min(h[1] for h in big)
        evidence = {
            "layer_output_rms": [f"{n}: {fmt(s)}" for n, s in zip(names, rms)],
            "saturating_layers": [h[0] for h in big],
            "weight_std_x_sqrt_fan_in": round(scale, 3),
            "depth": len(names),
            "activation": activation,
            "scheme": scheme,
            "custom_initialised": [h[0] for h in big],
        }
        msg = (f"at initialisation the weights of {len(big)} of {len(hidden)} hidden layers ({big[0][0]} ... "
               f"{big[-1][0]}) have a std of at least {scale:.2g}x 1/sqrt(fan_in) (Glorot's scale is ~1x), so "
               f"their pre-activations reach a root mean square of {fmt(min(h[2] for h in big))}-{fmt(max(h[2] for h in big))} "
               f"and saturate the {activation} from the first step: saturated units pass almost no gradient")
        return self.finding(msg, evidence, location=big[0][0], code="init.activation-scale",
                            severity=Severity.WARNING, step=1)

    def _oversized(self, names: list[str], weights: list[torch.Tensor], stds: list[float], rms: list[float],
                   wstds: list[float], ratio: float) -> Finding | None:
        """ReLU layers whose weights are all several times He's scale (``nn.init.normal_(w)`` at std 1):
        too shallow for the 100x rule, the signal still grows layer by layer and the output starts huge
        (logits with a std of tens saturate the softmax; the first losses are orders too large)."""
        if self._activation() != "relu" or ratio < OVERSIZED_GROWTH or rms[-1] < OVERSIZED_OUTPUT:
            return None
        scales = []
        for n, w, ws in zip(names, weights, wstds):
            rel = _relative_scale(w, ws)
            if rel is not None:
                scales.append((n, rel, self._default_init(w, ws)))
        big = [sc for sc in scales if sc[1] >= OVERSIZED_SCALE and not sc[2]]
        if len(scales) < 2 or len(big) < 2 or 3 * len(big) < 2 * len(scales):  # two thirds of them at least
            return None
        scheme = _scheme("relu")
        scale = min(sc[1] for sc in big)
        evidence = {
            "layer_output_std": [f"{n}: {fmt(x)}" for n, x in zip(names, stds)],
            "output_rms": rms[-1],
            "ratio": ratio,
            "weight_std_x_sqrt_fan_in": round(scale, 3),
            "he_scale": round(math.sqrt(2.0), 3),
            "depth": len(names),
            "activation": "relu",
            "scheme": scheme,
            "custom_initialised": [sc[0] for sc in big],
        }
        msg = (f"at initialisation the weights of {len(big)} of {len(scales)} layers ({big[0][0]} ... {big[-1][0]}) "
               f"have a std of at least {scale:.2g}x 1/sqrt(fan_in) (He's scale for ReLU is 1.4x), so the signal "
               f"grows {fmt(ratio)}x from {names[0]} to {names[-1]} and the model's output starts with a root mean "
               f"square of {fmt(rms[-1])}: the first losses are far too large and the softmax/outputs saturate")
        return self.finding(msg, evidence, location=big[0][0], code="init.activation-scale",
                            severity=Severity.WARNING, step=1)

    @staticmethod
    def _default_init(weight: torch.Tensor, std: float) -> bool:
        """Weights whose std matches PyTorch's kaiming_uniform(a=sqrt(5)) default: 1/sqrt(3*fan_in)."""
        fan_in = math.prod(weight.shape[1:]) if weight.dim() else 0
        if fan_in == 0:
            return True
        expected = 1.0 / math.sqrt(3.0 * fan_in)
        return DEFAULT_BAND[0] * expected <= std <= DEFAULT_BAND[1] * expected
