"""Runtime remedies for settings that cancel what the user meant: SGD's dampening beside its
momentum, LSTM forget gates that start closed, a LeakyReLU whose slope is 1 (the identity). Same contract as
:mod:`nndoctor.fix.remedies` (``install(finding, stack)`` changes the re-run through hooks; the
stack undoes it).
"""

from __future__ import annotations

import contextlib
import weakref
from typing import Any

import torch
from torch import nn

from nndoctor.fix.remedies import Remedy, _on_new_optimizers, _where
from nndoctor.monitor.checks.dampening import DAMPENING
from nndoctor.monitor.checks.forget_gate import CLOSED, forget_biases
from nndoctor.monitor.checks.identity_activation import NEAR, negative_slope

__all__ = ["SETTING_REMEDIES", "bend_activation", "open_forget_gates"]

Finding = dict[str, Any]


# -- SGD dampening beside momentum ----------------------------------------------------------------
def _install_no_dampening(f: Finding, stack: contextlib.ExitStack) -> None:
    """Every param group with a momentum in (0, 1) and a dampening >= 0.5 (the check's threshold: SGD
    and optimizers built on its settings) runs with dampening 0 (torch's default): the momentum the
    user chose acts again. Other groups are untouched."""

    def change(opt: torch.optim.Optimizer) -> None:
        for group in opt.param_groups:
            momentum, dampening = group.get("momentum"), group.get("dampening")
            if not isinstance(momentum, (int, float)) or not isinstance(dampening, (int, float)):
                continue
            if 0 < momentum < 1 and DAMPENING <= dampening < 1:
                group["dampening"] = 0.0

    _on_new_optimizers(stack, change)


# -- LSTM forget gates closed at the start -------------------------------------------------------
def open_forget_gates(module: nn.Module) -> int:
    """Open each closed layer/direction of an LSTM / LSTMCell (summed forget bias with a mean <= -1,
    the check's rule): its forget slices take their absolute values, so a sign slip (-2 meant as +2)
    gets back what was meant, and the summed bias's mean becomes >= +1 (the usual recipe's value or
    more). Returns how many layer/directions were opened; open or default gates are left as they are."""
    hidden = int(getattr(module, "hidden_size", 0))
    opened = 0
    with torch.no_grad():
        for suffix, total in forget_biases(module):
            if float(total.mean()) > CLOSED:
                continue
            for b in (getattr(module, "bias_ih" + suffix), getattr(module, "bias_hh" + suffix, None)):
                if isinstance(b, torch.Tensor):
                    b[hidden:2 * hidden].abs_()
            opened += 1
    return opened


def _install_open_forget_gate(f: Finding, stack: contextlib.ExitStack) -> None:
    """Before an LSTM / LSTMCell first runs with gradients on (its first training forward, after
    whatever initialisation the script did), its closed forget gates are opened."""
    done: weakref.WeakSet[nn.Module] = weakref.WeakSet()  # (not ids: a freed module's id is reused)

    def pre(module: nn.Module, args: Any) -> None:
        if not isinstance(module, (nn.LSTM, nn.LSTMCell)) or module in done or not torch.is_grad_enabled():
            return None
        done.add(module)
        open_forget_gates(module)
        return None

    handle = torch.nn.modules.module.register_module_forward_pre_hook(pre)
    stack.callback(handle.remove)


# -- an activation that is the identity ----------------------------------------------------------
def bend_activation(module: nn.Module) -> bool:
    """Give a LeakyReLU / RReLU whose negative slope is (within the check's NEAR of) 1 PyTorch's
    default slope (0.01; RReLU 1/8 to 1/3). Returns whether the module changed."""
    slope = negative_slope(module)
    if slope is None or abs(slope - 1.0) >= NEAR:
        return False
    if isinstance(module, nn.LeakyReLU):
        module.negative_slope = 0.01
    elif isinstance(module, nn.RReLU):
        module.lower, module.upper = 1.0 / 8, 1.0 / 3
    return True


def _install_bend_activation(f: Finding, stack: contextlib.ExitStack) -> None:
    """Before each LeakyReLU / RReLU first runs, a slope of ~1 becomes the default one."""
    done: weakref.WeakSet[nn.Module] = weakref.WeakSet()

    def pre(module: nn.Module, args: Any) -> None:
        if isinstance(module, (nn.LeakyReLU, nn.RReLU)) and module not in done:
            done.add(module)
            bend_activation(module)
        return None

    handle = torch.nn.modules.module.register_module_forward_pre_hook(pre)
    stack.callback(handle.remove)


SETTING_REMEDIES: tuple[Remedy, ...] = (
    Remedy("no-dampening", ("optimizer.dampening-cancels-momentum",),
           lambda f: f"SGD's dampening set to 0 in {_where(f)} (momentum kept)",
           lambda f: f"Drop dampening where {_where(f)} is created "
                     "(torch's default is 0): SGD(params, lr, momentum=...).",
           _install_no_dampening),
    Remedy("open-forget-gate", ("init.lstm-forget-gate-closed",),
           lambda f: f"the forget gates of {_where(f)} opened before its first training forward (the forget "
                     "slices' signs flipped, at least +1 in all)",
           lambda f: f"Fill the forget slice [H:2H] of {_where(f)}'s biases with a positive value (+1 in all is the "
                     "usual recipe; check the sign), or keep PyTorch's default initialisation.",
           _install_open_forget_gate),
    Remedy("bend-activation", ("activation.identity-activation",),
           lambda f: f"LeakyReLU/RReLU with a negative slope of ~1 in {f.get('evidence', {}).get('model', 'the model')} "
                     "given PyTorch's default slope (0.01)",
           lambda f: "Pass the flag by name: nn.LeakyReLU(inplace=True) (the first argument is negative_slope), or "
                     "nn.LeakyReLU(0.01, True).",
           _install_bend_activation),
)
