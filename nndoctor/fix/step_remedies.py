"""Runtime remedies for a stalled run whose step is too small, at the setting the step-size probe
measured working (:mod:`nndoctor.monitor.checks.lr_probe`).

* ``optimizer.plain-sgd-stalls``: plain SGD (no momentum) barely moves a model that Adam at 1e-3
  trains; the re-run's SGD optimizer without momentum at the finding's rate becomes Adam at the probe's
  rate as it is created (same parameters and parameter groups, their weight decay and ``maximize``
  kept; its class is Adam's from then on, so a scheduler made after it scales Adam's rate).
* ``lr.too-low`` whose probe found momentum 0.9 the working setting (the rate alone did not learn):
  the SGD optimizer without momentum at the finding's rate gets momentum 0.9, rate unchanged.

Same contract as :mod:`nndoctor.fix.remedies`: ``install(finding, stack)`` changes the re-run through
hooks, the stack undoes them; other optimizers (with momentum, another rate, another class) are untouched.
"""

from __future__ import annotations

import contextlib
import math
from typing import Any

import torch

from nndoctor.fix.remedies import Remedy, _on_new_optimizers

__all__ = ["ADAM_LR", "STEP_REMEDIES", "momentum_best", "probe_adam_lr", "to_adam"]

Finding = dict[str, Any]

#: the rate the probe tries Adam at (``Setting("Adam at lr 1e-3", other=Adam, lr=1e-3)``)
ADAM_LR = 1e-3
_MOMENTUM = 0.9


def momentum_best(f: Finding) -> bool:
    """The probe's best setting is the current rate with momentum 0.9."""
    return str((f.get("evidence") or {}).get("probe_best", "")).endswith("with momentum 0.9")


def probe_adam_lr(f: Finding) -> float:
    """Adam's rate from the probe's best setting (``"Adam at lr 1e-3"``), else :data:`ADAM_LR`."""
    best = str((f.get("evidence") or {}).get("probe_best", ""))
    try:
        lr = float(best.rsplit(" ", 1)[-1]) if best.startswith("Adam at lr ") else ADAM_LR
    except ValueError:
        return ADAM_LR
    return lr if math.isfinite(lr) and lr > 0 else ADAM_LR


def _plain_sgd_at(opt: torch.optim.Optimizer, f: Finding) -> bool:
    """``opt`` is the finding's optimizer: SGD, no momentum in any group, the finding's rate (within 5%;
    a finding without a readable rate matches any)."""
    if type(opt) is not torch.optim.SGD or any(g.get("momentum") for g in opt.param_groups):
        return False
    try:
        lr = float((f.get("evidence") or {}).get("lr"))
    except (TypeError, ValueError):
        return True
    rates = [g.get("lr") for g in opt.param_groups]
    return any(isinstance(r, (int, float)) and abs(float(r) - lr) <= 0.05 * lr for r in rates)


def to_adam(opt: torch.optim.Optimizer, lr: float) -> None:
    """Make ``opt`` an Adam optimizer at ``lr`` in place: its parameter groups keep their parameters,
    weight decay and ``maximize`` and take Adam's defaults for the rest (a throwaway Adam gives them,
    and hooks Adam's ``step`` as torch does for any optimizer class it builds); its state is empty."""
    probe = torch.optim.Adam([torch.zeros(1, requires_grad=True)], lr=lr)
    defaults = {k: v for k, v in probe.param_groups[0].items() if k != "params"}
    for group in opt.param_groups:
        kept = {k: group[k] for k in ("weight_decay", "maximize") if k in group}
        group.update({**defaults, **kept, "lr": lr})
        group.pop("initial_lr", None)
    opt.defaults = {**defaults, "lr": lr}
    opt.state.clear()
    opt.__class__ = torch.optim.Adam


def _install_adam(f: Finding, stack: contextlib.ExitStack) -> None:
    lr = probe_adam_lr(f)

    def change(opt: torch.optim.Optimizer) -> None:
        if _plain_sgd_at(opt, f):
            to_adam(opt, lr)

    _on_new_optimizers(stack, change)


def _install_momentum(f: Finding, stack: contextlib.ExitStack) -> None:
    def change(opt: torch.optim.Optimizer) -> None:
        if _plain_sgd_at(opt, f):
            for group in opt.param_groups:
                group["momentum"] = _MOMENTUM

    _on_new_optimizers(stack, change)


def _name(f: Finding) -> str:
    return str((f.get("evidence") or {}).get("optimizer") or f.get("location") or "the optimizer")


STEP_REMEDIES: tuple[Remedy, ...] = (
    Remedy("adam-instead-of-plain-sgd", ("optimizer.plain-sgd-stalls",),
           lambda f: f"{_name(f)} (SGD without momentum, lr {(f.get('evidence') or {}).get('lr', '?')}) replaced by "
                     f"Adam at lr {probe_adam_lr(f):g} (the probe's working setting)",
           lambda f: f"Create {_name(f)} as torch.optim.Adam(model.parameters(), lr={probe_adam_lr(f):g}) instead of "
                     "plain SGD.",
           _install_adam),
    Remedy("momentum", ("lr.too-low",),
           lambda f: f"momentum 0.9 for {_name(f)} (SGD, lr {(f.get('evidence') or {}).get('lr', '?')} kept: the "
                     "probe's working setting)",
           lambda f: f"Add momentum=0.9 where {_name(f)} is created: torch.optim.SGD(params, lr=..., momentum=0.9).",
           _install_momentum, applies=momentum_best),
)
