"""Runtime remedies for layers that block the signal of a plain stack: a softmax used as a hidden
activation (the named ``nn.Softmax`` module passes ``relu`` of its input instead) and
normalisation layers whose weight (gamma) starts at zero (it starts at 1, PyTorch's default).
Same contract as :mod:`nndoctor.fix.remedies` (``install(finding, stack)`` changes the re-run
through hooks; the stack undoes it).

The finding (``activation.softmax-as-hidden-activation``) names the softmax whose near-uniform
rows feed a weighted layer (``softmax_at``, e.g. ``model.1``). At each model's first call the
re-run looks that name up among the model's submodules; an ``nn.Softmax`` found there gets a
forward hook that returns ``relu(input)`` (the usual hidden activation). Other softmaxes (the
output, attention) keep theirs; a softmax written as a function call in ``forward`` is left
alone (no module says which call it was), so the re-run then shows no effect.
"""

from __future__ import annotations

import contextlib
import weakref
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from nndoctor.fix.remedies import Remedy, _on_root_calls

__all__ = ["ACTIVATION_REMEDIES", "matches"]

_NORMS = (nn.modules.batchnorm._NormBase, nn.LayerNorm, nn.GroupNorm)

Finding = dict[str, Any]


def matches(reported: str, name: str) -> bool:
    """Whether a submodule path ``name`` (``1``, ``body.act``) is the module ``reported`` names
    (``model.1``: the model's variable, then the path)."""
    return bool(name) and (reported == name or reported.endswith("." + name))


def _softmax_at(f: Finding) -> str:
    at = (f.get("evidence") or {}).get("softmax_at")
    return at if isinstance(at, str) and at and at != "the forward" else ""


def _install_hidden_relu(f: Finding, stack: contextlib.ExitStack) -> None:
    at = _softmax_at(f)
    if not at:
        raise ValueError("the finding names no softmax module")
    seen: weakref.WeakSet[nn.Module] = weakref.WeakSet()  # (not ids: a freed module's id is reused)

    def relu_instead(module: nn.Module, args: tuple[Any, ...], output: Any) -> Any:
        return F.relu(args[0]) if args else output

    def pre(model: nn.Module, args: tuple[Any, ...]) -> None:
        if model in seen:
            return None
        seen.add(model)
        for name, module in model.named_modules():
            if isinstance(module, nn.Softmax) and matches(at, name):
                stack.callback(module.register_forward_hook(relu_instead).remove)
        return None

    _on_root_calls(stack, pre)


def _zero_layers(f: Finding) -> list[str]:
    names = (f.get("evidence") or {}).get("zero_weight_layers") or []
    return [n for n in names if isinstance(n, str) and n]


def _install_norm_weight_one(f: Finding, stack: contextlib.ExitStack) -> None:
    """At a model's first training call, each normalisation layer the finding names whose weight is
    exactly zero everywhere gets its default weight of 1 (before any gradient is computed)."""
    layers = _zero_layers(f)
    if not layers:
        raise ValueError("the finding names no normalisation layer")
    seen: weakref.WeakSet[nn.Module] = weakref.WeakSet()

    def pre(model: nn.Module, args: tuple[Any, ...]) -> None:
        if model in seen or not torch.is_grad_enabled():
            return None
        seen.add(model)
        with torch.no_grad():
            for name, module in model.named_modules():
                w = getattr(module, "weight", None)
                if isinstance(module, _NORMS) and isinstance(w, torch.Tensor) and w.numel() \
                        and any(matches(at, name) for at in layers) and not bool(w.detach().any()):
                    w.fill_(1.0)
        return None

    _on_root_calls(stack, pre)


ACTIVATION_REMEDIES: tuple[Remedy, ...] = (
    Remedy("relu-instead-of-hidden-softmax", ("activation.softmax-as-hidden-activation",),
           lambda f: f"the hidden softmax at {_softmax_at(f)} replaced by ReLU",
           lambda f: f"Use nn.ReLU() (or another element-wise activation) instead of the softmax at {_softmax_at(f)}: "
                     "a softmax belongs only at the output (and then not before CrossEntropyLoss).",
           _install_hidden_relu, applies=lambda f: bool(_softmax_at(f))),
    Remedy("norm-weight-one", ("init.zero-norm-weight",),
           lambda f: f"the zero normalisation weight of {', '.join(_zero_layers(f))} set to 1 before the first step",
           lambda f: "Remove the nn.init.zeros_ on the normalisation weight (gamma) of "
                     f"{', '.join(_zero_layers(f))}: zero-init only the last norm of a residual branch, "
                     "never in a plain stack.",
           _install_norm_weight_one, applies=lambda f: bool(_zero_layers(f))),
)
