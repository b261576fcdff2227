"""Runtime remedies for a model's fit. A model that overfits: training stops at the step of the
best validation loss (early stopping); one that memorised its training rows with no validation curve
to find that step (one evaluation, at the end) is trained with an L2 penalty instead (weight decay,
see :func:`_install_l2`). A linear model on data that need a non-linear one: it
gets the hidden layer the finding's MLP probe had (see :func:`_install_hidden_layer`). Same contract as :mod:`nndoctor.fix.remedies` (``install(finding, stack)``
changes the re-run through hooks; the stack undoes it).

The re-run repeats the diagnosis run (same seed, same arguments) up to that step; from then on
every optimizer step finds no gradient (they are cleared just before it) and leaves the weights
as they were, so the script's own evaluation at the end sees the weights of the best validation
step.
"""

from __future__ import annotations

import contextlib
import weakref
from typing import Any

import torch
import torch.nn as nn

from nndoctor.fix.remedies import Remedy, _on_new_optimizers, _on_root_calls, _step_pre

__all__ = ["FIT_REMEDIES", "L2_SHARE", "best_step", "hidden_units", "l2_strength"]

#: the L2 penalty's strength, as a share of the constant prediction's loss (the targets' variance for
#: a mean squared error): 0.1 on unit-variance targets, as strong as the targets are large
L2_SHARE = 0.1

Finding = dict[str, Any]


def best_step(f: Finding) -> int:
    """The step of the best validation loss the finding measured (0: none)."""
    value = (f.get("evidence") or {}).get("best_step")
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def _install_early_stop(f: Finding, stack: contextlib.ExitStack) -> None:
    stop = best_step(f)
    if not stop:
        raise ValueError("the finding names no best validation step")
    steps: dict[int, int] = {}

    def pre(optimizer: torch.optim.Optimizer, args: Any, kwargs: Any) -> None:
        done = steps.get(id(optimizer), 0)
        steps[id(optimizer)] = done + 1
        if done >= stop:                    # past the best step: this step changes nothing
            for group in optimizer.param_groups:
                for p in group["params"]:
                    p.grad = None

    _step_pre(stack, pre)


def l2_strength(f: Finding) -> float:
    """The weight decay for a model that memorised its training rows: ``L2_SHARE`` x the constant
    prediction's loss the finding measured (0: none measured)."""
    ev = f.get("evidence") or {}
    base = ev.get("constant_loss")
    if ev.get("memorised") is not True or not isinstance(base, (int, float)) or isinstance(base, bool) \
            or not base > 0 or best_step(f):
        return 0.0
    return float(L2_SHARE * base)


def _install_l2(f: Finding, stack: contextlib.ExitStack) -> None:
    """Before every optimizer step, ``l2_strength(f) * w`` is added to the gradient of each weight
    that has one (an L2 penalty on the loss, whatever the optimizer: Adam's coupled
    ``weight_decay``, SGD's), biases and norm scales (one dimension) left out."""
    wd = l2_strength(f)
    if not wd:
        raise ValueError("the finding measured no memorised training set")

    def pre(optimizer: torch.optim.Optimizer, args: Any, kwargs: Any) -> None:
        with torch.no_grad():
            for group in optimizer.param_groups:
                for p in group["params"]:
                    if p.grad is not None and p.dim() > 1 and p.grad.shape == p.shape:
                        p.grad.add_(p, alpha=wd)

    _step_pre(stack, pre)


def hidden_units(f: Finding) -> int:
    """The width of the hidden layer that fitted the data: the finding's MLP probe's."""
    from nndoctor.monitor.checks.data.probe import MLP_HIDDEN

    value = (f.get("evidence") or {}).get("mlp_probe_hidden_units", MLP_HIDDEN)
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else MLP_HIDDEN


def _install_hidden_layer(f: Finding, stack: contextlib.ExitStack) -> None:
    """At a model's first training forward, a model made only of ``nn.Linear`` layers (and shape
    or dropout layers: :func:`nndoctor.monitor.checks.data.linear.linear_layers`) becomes
    non-linear: a single Linear(in, out) computes Linear(in, h) -> ReLU -> Linear(h, out) instead,
    with ``h`` the finding's MLP probe's width (the new layers join the optimizers that hold the
    old one, with its group's settings); a stack of Linear layers gets a ReLU after each but the
    last. Models with anything else in them are left as they are."""
    from nndoctor.monitor.checks.data.linear import linear_layers

    if (f.get("evidence") or {}).get("model_is_linear") is not True:
        raise ValueError("the finding does not say the model is linear")
    width = hidden_units(f)
    optimizers: list[weakref.ReferenceType[torch.optim.Optimizer]] = []
    _on_new_optimizers(stack, lambda opt: optimizers.append(weakref.ref(opt)))
    done: set[int] = set()

    def relu_after(module: nn.Module, args: Any, out: Any) -> Any:
        return torch.relu(out)

    def hidden(layer: nn.Linear) -> None:
        w = layer.weight
        block = nn.Sequential(nn.Linear(layer.in_features, width), nn.ReLU(),
                              nn.Linear(width, layer.out_features, bias=layer.bias is not None))
        block.to(device=w.device, dtype=w.dtype)
        layer.add_module("hidden", block)
        stack.callback(layer._modules.pop, "hidden", None)
        stack.callback(layer.register_forward_hook(lambda m, args, out: block(args[0])).remove)
        for ref in optimizers:
            opt = ref()
            group = next((g for g in opt.param_groups if any(p is w for p in g["params"])), None) if opt else None
            if opt is not None and group is not None:
                opt.add_param_group({**{k: v for k, v in group.items() if k != "params"},
                                     "params": list(block.parameters())})

    def pre(model: nn.Module, args: tuple[Any, ...]) -> None:
        if id(model) in done or not torch.is_grad_enabled():
            return None
        done.add(id(model))
        layers = [m for m in model.modules() if type(m) is nn.Linear]
        if not layers or linear_layers(model) != len(layers):
            return None
        if len(layers) == 1:
            hidden(layers[0])
        else:
            for layer in layers[:-1]:
                stack.callback(layer.register_forward_hook(relu_after).remove)
        return None

    _on_root_calls(stack, pre)


FIT_REMEDIES: tuple[Remedy, ...] = (
    Remedy("early-stopping", ("fit.overfitting",),
           lambda f: f"training stopped at step {best_step(f)}, the best validation loss (later optimizer steps "
                     "leave the weights unchanged)",
           lambda f: f"Stop training at the best validation loss (step {best_step(f)}): keep the checkpoint with the "
                     "lowest validation loss (early stopping), or add weight decay / dropout / more data.",
           _install_early_stop, applies=lambda f: best_step(f) > 0),
    Remedy("weight-decay", ("fit.overfitting",),
           lambda f: f"an L2 penalty of {l2_strength(f):.3g} x the weights added to their gradients before each "
                     "step (weight decay: the model memorised its training rows, and no validation curve "
                     "gives a step to stop at)",
           lambda f: f"Regularise: weight_decay={l2_strength(f):.3g} where the optimizer is created (torch.optim."
                     "Adam/SGD), or dropout, or fewer epochs: evaluate on held-out rows every epoch and keep the "
                     "best checkpoint.",
           _install_l2, applies=lambda f: l2_strength(f) > 0, regularises=True),
    Remedy("hidden-layer", ("fit.underfitting",),
           lambda f: (f"{f.get('location') or 'the model'}'s single Linear layer given a hidden layer of "
                      f"{hidden_units(f)} ReLU units" if (f.get("evidence") or {}).get("linear_layers") == 1
                      else f"a ReLU between {f.get('location') or 'the model'}'s Linear layers"),
           lambda f: "Add a hidden layer with an activation: nn.Sequential(nn.Linear(in, "
                     f"{hidden_units(f)}), nn.ReLU(), nn.Linear({hidden_units(f)}, out)) (a stack of Linear layers "
                     "without activations is one linear map).",
           _install_hidden_layer, applies=lambda f: (f.get("evidence") or {}).get("model_is_linear") is True
           and bool((f.get("evidence") or {}).get("linear_layers"))),  # (a network without modules: none to change)
)
