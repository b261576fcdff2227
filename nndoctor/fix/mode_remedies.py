"""Runtime remedies for a layer's mode. Functional dropout left on in eval mode
(``F.dropout(x, p)`` inside a module's forward: ``training`` defaults to True, and ``model.eval()``
does not reach a function call): in the re-run a functional dropout call follows the mode of the
module whose forward makes it, as ``F.dropout(x, p, training=self.training)`` would. Same contract
as :mod:`nndoctor.fix.remedies` (``install(finding, stack)`` changes the re-run through hooks; the
stack undoes it).
"""

from __future__ import annotations

import contextlib
import functools
from typing import Any, Callable

import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.nn.modules.module as module_hooks

from nndoctor.fix.remedies import Remedy, _patch

__all__ = ["DROPOUT_FUNCTIONS", "MODE_REMEDIES"]

Finding = dict[str, Any]

#: torch.nn.functional's dropout functions, each taking (input, p, training, inplace)
DROPOUT_FUNCTIONS = ("dropout", "dropout1d", "dropout2d", "dropout3d", "alpha_dropout", "feature_alpha_dropout")


def _install_dropout_follows_mode(f: Finding, stack: contextlib.ExitStack) -> None:
    """Every module's forward is tracked (a stack of the modules running); a functional dropout
    call with ``training`` True made while the innermost running module is in eval mode runs with
    ``training=False``. A call outside any module's forward, or made by a module in train mode
    (Monte-Carlo dropout put back on purpose, nn.Dropout's own call), is left as it is."""
    running: list[nn.Module] = []

    def pre(module: nn.Module, args: Any) -> None:
        running.append(module)
        return None

    def post(module: nn.Module, args: Any, output: Any) -> None:
        if running and running[-1] is module:
            running.pop()
        elif module in running:  # (an exception unwound forwards without their hooks)
            del running[running.index(module):]

    h1 = module_hooks.register_module_forward_pre_hook(pre)
    h2 = module_hooks.register_module_forward_hook(post, always_call=True)
    stack.callback(h1.remove)
    stack.callback(h2.remove)

    def follow(original: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(original)
        def call(input: torch.Tensor, p: float = 0.5, training: bool = True, inplace: bool = False) -> Any:
            if training and running and not running[-1].training:
                training = False
            return original(input, p, training, inplace)

        return call

    for name in DROPOUT_FUNCTIONS:
        if hasattr(F, name):
            _patch(stack, F, name, follow)


MODE_REMEDIES: tuple[Remedy, ...] = (
    Remedy("dropout-follows-eval-mode", ("train-mode.functional-dropout-in-eval",),
           lambda f: f"functional dropout{_at(f)} off while its module is in eval mode "
                     "(training=self.training)",
           lambda f: f"Pass the module's mode{_at(f)}: F.dropout(x, p, training=self.training), or use an "
                     "nn.Dropout module (model.eval() switches it off).",
           _install_dropout_follows_mode),
)


def _at(f: Finding) -> str:
    site = (f.get("evidence") or {}).get("site")
    return f" at {site}" if site and site != "<unknown>" else ""
