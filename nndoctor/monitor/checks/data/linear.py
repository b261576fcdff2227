"""A linear model on data that a linear model cannot fit: underfitting by construction.

A model built of ``nn.Linear`` layers with no nonlinearity between them (a missing hidden
layer, or hidden layers without an activation) is a linear classifier however many layers
it has. On data whose classes are not linearly separable (circles, XOR, moons) it converges
to the best linear fit and stays there: no lr, optimizer or longer training helps.

At the end of a classification run with one model and one optimizer, when

* the model is linear: its modules are ``nn.Linear`` layers plus shape or dropout layers
  only (an output ``Softmax``/``LogSoftmax`` is the link of a linear classifier), and no
  activation function (``F.relu``, ``torch.tanh``, ``x.sigmoid()``, ...) ran inside it;
* its training loss has not fallen below a fifth of the class priors' loss;

or the network has no module at all (weights are plain tensors, ``x @ W + b``: its input is found by
:mod:`nndoctor.monitor.loose_input`) and the autograd graph behind every sampled training loss's input is
a linear map of the data (:func:`~nndoctor.monitor.loose_input.linear_graph`; an output softmax or sigmoid
link allowed), trained by one optimizer or by hand,

the probes of :mod:`.probe` are fitted on the observed (input, label) pairs. A warning
``fit.underfitting`` (evidence ``model_is_linear``) when the non-linear probes (5-NN, small
MLP) reach at most half the logistic regression's held-out loss and 10 points more accuracy
(the data need a non-linear model), while the model's training loss is no better than 0.8x
the logistic regression's (the model sits at what a linear model can do). A stack of two or more
``nn.Linear`` layers (hidden layers whose activation is missing or linear: a non-linear model was
meant) is named on a smaller but clear gain: 0.8x the logistic regression's loss and 5 points.
"""

from __future__ import annotations

from typing import Any, Iterable

import numpy as np
from torch import nn

from nndoctor.checks import Check, register
from nndoctor.findings import Finding
from nndoctor.monitor.checks.data.probe import (
    MIN_PAIRS,
    MIN_STEPS,
    MLP_HIDDEN,
    pair_probe,
    train_chance_loss,
)
from nndoctor.monitor.checks.data.sample import ObservedData
from nndoctor.monitor.curves import per_step
from nndoctor.monitor.events import LossCall, ModelInput, OpCall, RunEnd
from nndoctor.monitor.loose_input import INPUT_OPS, NAME, linear_graph, loose_input
from nndoctor.monitor.tensors import own_parameters

__all__ = ["LinearModelUnderfits", "NONLINEAR_OPS", "linear_layers"]

#: activation functions that make a stack of Linear layers non-linear when called inside the model
NONLINEAR_OPS = frozenset({
    "relu", "relu_", "relu6", "leaky_relu", "leaky_relu_", "elu", "elu_", "selu", "celu", "gelu", "silu",
    "mish", "softplus", "softsign", "tanh", "tanh_", "sigmoid", "sigmoid_", "hardtanh", "hardtanh_",
    "hardswish", "hardsigmoid", "logsigmoid", "prelu", "rrelu", "glu", "threshold", "sin", "cos", "exp",
    "abs", "pow", "square", "clamp", "clamp_",
    "matmul", "bmm", "einsum", "baddbmm",   # products of two activations (attention): not a linear map
})
_SHAPE_ONLY = (nn.Flatten, nn.Unflatten, nn.Identity, nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.AlphaDropout,
               nn.Softmax, nn.LogSoftmax, nn.Sequential, nn.ModuleList, nn.ModuleDict)
NONLINEAR_SHARE = 0.5      # the best non-linear probe's loss / the logistic regression's, at most
ACCURACY_GAIN = 0.1        # the best non-linear probe's accuracy over the logistic regression's, at least
#: the same for a stack of two or more nn.Linear layers with no activation between them: hidden layers say
#: a non-linear model was meant (a missing or linear hidden activation), so a clear but smaller gain of the
#: non-linear probes names it (a single nn.Linear is a deliberate linear model: the stricter bar above)
STACKED_SHARE = 0.8
STACKED_GAIN = 0.05
AT_LINEAR = 0.8            # the model's training loss / the logistic regression's, at least
FITTED = 0.2               # a training loss below this share of the priors' loss: the model fits, nothing to say


def linear_layers(model: nn.Module) -> int:
    """The number of ``nn.Linear`` layers when the model's modules hold nothing that is not linear
    (0 otherwise); functional activations are not seen here (see :class:`LinearModelUnderfits`)."""
    count = 0
    for m in model.modules():
        if type(m) is nn.Linear:
            count += 1
        elif isinstance(m, _SHAPE_ONLY):
            continue
        elif any(True for _ in own_parameters(m)):
            return 0                              # a layer of its own making: maybe not linear
        elif not any(True for _ in m.children()):
            return 0                              # a parameter-free leaf: an activation module
    return count


@register
class LinearModelUnderfits(Check):
    """A model with no nonlinearity stuck at a linear model's loss on data that need a non-linear one."""

    code = "fit.underfitting"
    needs = ("model_input", "op", "loss", "end")
    sampled_only = frozenset({"model_input", "op", "loss"})  # the first training forwards are sampled
    ops = NONLINEAR_OPS | INPUT_OPS
    end_cost = 3  # probes fitted at the end, after the label checks' (nndoctor/monitor/ending.py)

    def __init__(self, state: Any) -> None:
        super().__init__(state)
        self.nonlinear_in: set[str] = set()      # root models inside which an activation ran
        self.layers: dict[str, int] = {}          # root model -> linear_layers at its first training forward
        #: a network without nn.Module: whether every sampled training loss read a linear map of the
        #: data (None until one is read), and the number of weighted ops seen in one forward
        self.loose_linear: bool | None = None
        self._loose_seen = False

    def check(self, event: ModelInput | OpCall | LossCall | RunEnd) -> Iterable[Finding]:
        if event.kind == "op":
            if event.module and event.name in NONLINEAR_OPS:
                self.nonlinear_in.add(event.module.split(".", 1)[0].split("[", 1)[0])
            elif event.name in INPUT_OPS and loose_input(self.state, event) is not None:
                self._loose_seen = True
        elif event.kind == "loss":
            if self._loose_seen and not self.state.models and event.grad_enabled and self.loose_linear is not False:
                linear = linear_graph(event.input)
                self.loose_linear = linear if linear is not None else False
        elif event.kind == "model_input":
            if event.training and event.grad_enabled and event.name not in self.layers:
                self.layers[event.name] = linear_layers(event.model)
        else:
            return self._judge(event)
        return ()

    def _judge(self, event: RunEnd) -> list[Finding]:
        if len(self.state.optimizers) > 1:
            return []
        if not self.state.models and self.loose_linear:  # (an optimizer over a list, or updates by hand)
            name, layers = NAME, 0  # a network without nn.Module whose output is a linear map of its input
        elif len(self.state.models) != 1 or len(self.layers) != 1 or len(self.state.optimizers) != 1:
            return []
        else:
            name, layers = next(iter(self.layers.items()))
            if name in self.nonlinear_in or layers == 0:
                return []
        data = ObservedData.of(self.state)
        if data is None or data.pair_rows < MIN_PAIRS or data.train_counts is None or not data.single_input:
            return []
        base = train_chance_loss(data)
        _, values = per_step(*self.state.losses.series())
        values = values[np.isfinite(values)]
        if base is None or base <= 0 or len(values) < MIN_STEPS:
            return []
        level = float(np.median(values[-max(10, len(values) // 4):]))
        if level < FITTED * base:
            return []
        r = pair_probe(self.state, data, event, self.name())  # (the label check's, when it fitted them)
        if r is None:
            return []
        best_loss, best_acc = min(r.knn_loss, r.mlp_loss), max(r.knn, r.mlp)
        share, gain = (STACKED_SHARE, STACKED_GAIN) if layers >= 2 else (NONLINEAR_SHARE, ACCURACY_GAIN)
        if not (best_loss <= share * r.linear_loss and best_acc - r.linear >= gain
                and level >= AT_LINEAR * r.linear_loss):
            return []
        evidence = {"model_is_linear": True, "model": name, "linear_layers": layers,
                    "train_loss": round(level, 4), "chance_loss": round(base, 4), "examples": r.n,
                    "linear_probe_loss": round(r.linear_loss, 4), "knn_probe_loss": round(r.knn_loss, 4),
                    "mlp_probe_loss": round(r.mlp_loss, 4), "linear_probe_accuracy": round(r.linear, 3),
                    "knn_probe_accuracy": round(r.knn, 3), "mlp_probe_accuracy": round(r.mlp, 3),
                    "mlp_probe_hidden_units": MLP_HIDDEN}
        if not layers:
            evidence["modules"] = "none: weights are plain tensors"
            shape = "its output is a linear map of its input: weight products and sums, no activation"
        elif layers == 1:
            shape = "a single nn.Linear layer"
        else:
            shape = f"{layers} nn.Linear layers with no activation between them"
        return [self.finding(
            f"{name} is a linear model ({shape}) and the data need a non-linear one: its training loss stays "
            f"at {level:.3g}, no better than a logistic regression's held-out {r.linear_loss:.3g} (accuracy "
            f"{r.linear:.0%}), while 5-nearest-neighbour and small-MLP probes on {r.n} observed training examples "
            f"reach {r.knn_loss:.3g} and {r.mlp_loss:.3g} (accuracy {r.knn:.0%} and {r.mlp:.0%})",
            evidence, location=name)]
