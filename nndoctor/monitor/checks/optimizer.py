"""optimizer: settings other than the learning rate that break training.

Read once per optimizer, from ``optimizer.param_groups`` at its first ``step`` pre event
(gradients are ready then, so an Adam ``eps`` can be compared with the actual gradient
scale). Settings torch itself rejects at construction (betas outside [0, 1), negative
eps/momentum/weight decay, nesterov without momentum) are explained from the ``crash``.
"""

from __future__ import annotations

import logging
import math
import os
import re
import statistics
import traceback
from typing import Any, Iterable

import torch

from nndoctor.checks import Check, register
from nndoctor.findings import Finding, Severity
from nndoctor.monitor.checks._layers import fmt, host_floats
from nndoctor.monitor.events import Crash, StepEvent
from nndoctor.monitor.notebook import code_site

__all__ = ["OptimizerSettings"]

logger = logging.getLogger("nndoctor")

_INTERNAL = (os.path.dirname(torch.__file__), os.path.dirname(os.path.dirname(os.path.dirname(__file__))))

EPS_TINY = 1e-12
EPS_LARGE = 1e-2
EPS_DAMPING = 10.0
#: RMSprop/Adagrad with an eps that dominates the gradients step like plain SGD at lr/eps: recipes pair a large
#: eps with a large rate (Inception's RMSprop eps=1.0 at lr 0.045, DQN's eps=0.01 at 2.5e-4), so their eps is
#: named only when that SGD rate is at most this (plain SGD needs ~1e-2 to 1e-1)
SLOW_SGD_RATE = 1e-2
MOMENTUM_EXTREME = 0.995  # momentum / Adam beta1 at or above this: steps ~200x+ the gradient step  # eps this many times the typical |grad| shrinks updates that much

_TORCH_ERRORS = (
    (re.compile(r"Invalid beta parameter at index (\d): (\S+)"), "betas", "each beta in [0, 1), e.g. (0.9, 0.999)"),
    (re.compile(r"Invalid epsilon value: (\S+)"), "eps", "eps > 0, e.g. 1e-8"),
    (re.compile(r"Invalid weight_decay value: (\S+)"), "weight_decay", "weight_decay >= 0, e.g. 1e-4"),
    (re.compile(r"Invalid momentum value: (\S+)"), "momentum", "momentum in [0, 1), e.g. 0.9"),
    (re.compile(r"Nesterov momentum requires a momentum and zero dampening"), "nesterov",
     "nesterov=True only with momentum > 0 and dampening=0"),
    (re.compile(r"Invalid alpha value: (\S+)"), "alpha", "alpha in [0, 1), e.g. 0.99"),
)


@register
class OptimizerSettings(Check):
    """Adam eps/betas, SGD momentum/dampening, RMSprop alpha, negative decay, maximize."""

    code = "optimizer.bad-setting"
    needs = ("step", "crash")
    step_phases = frozenset({"pre"})
    sampled_only = frozenset({"step"})
    extra_codes = ("optimizer.adam-eps", "optimizer.adam-betas", "optimizer.extreme-momentum", "optimizer.maximize")

    _DEFAULTS = {"eps": "1e-8", "betas": "(0.9, 0.999)", "momentum": "0 or 0.9", "dampening": "0",
                 "weight_decay": "0", "alpha": "0.99", "nesterov": "False"}

    def __init__(self, state: Any) -> None:
        super().__init__(state)
        self.seen: set[int] = set()

    def check(self, event: Any) -> Iterable[Finding]:
        if event.kind == "crash":
            return self._on_crash(event)
        if event.phase != "pre" or id(event.optimizer) in self.seen:
            return ()
        self.seen.add(id(event.optimizer))
        return self._inspect(event)

    # ------------------------------------------------------------------ settings
    def _inspect(self, event: StepEvent) -> list[Finding]:
        opt = event.optimizer
        cls = type(opt).__name__
        groups = opt.param_groups
        out: list[Finding] = []
        for gi, group in enumerate(groups):
            where = event.optimizer_name if len(groups) == 1 else f"{event.optimizer_name}.param_groups[{gi}]"
            base = {"optimizer": f"{event.optimizer_name} ({cls})", "group": gi, "step": event.step}

            def bad(setting: str, value: Any, sane: str, why: str, code: str = "optimizer.bad-setting",
                    severity: Severity = Severity.ERROR, *, _base: dict[str, Any] = base,
                    _where: str = where, **extra: Any) -> None:
                ev = {**_base, "setting": setting, "value": value, "sane": sane,
                      "default": self._DEFAULTS.get(setting, "the default"), **extra}
                msg = f"{cls} {setting}={value} in {_where}: {why}"
                out.append(self.finding(msg, ev, location=_where, code=code, severity=severity))

            wd = _num(group.get("weight_decay"))
            if wd is not None and wd < 0:
                bad("weight_decay", wd, "weight_decay >= 0", "a negative weight decay pushes weights "
                    "away from 0 every step, so they grow without bound")
            if group.get("maximize") is True:
                bad("maximize", True, "maximize=False for a loss", "the optimizer ascends the loss "
                    "instead of descending it, so the loss goes up", code="optimizer.maximize",
                    severity=Severity.WARNING)
            momentum = _num(group.get("momentum"))
            if momentum is not None and momentum >= 1:
                bad("momentum", momentum, "momentum in [0, 1), usually 0.9", "with momentum >= 1 old "
                    "gradients never fade: the velocity keeps growing and the weights run away")
            elif momentum is not None and momentum >= MOMENTUM_EXTREME:
                lr = _num(group.get("lr"))
                eff = f" (lr {fmt(lr)} acts like {fmt(lr / (1 - momentum))})" if lr else ""
                bad("momentum", momentum, "momentum in [0, 0.99], usually 0.9", f"with momentum "
                    f"{momentum} a gradient keeps pushing for ~{round(1 / (1 - momentum))} steps, so each "
                    f"step is ~{round(1 / (1 - momentum))}x the gradient step{eff}: the weights overshoot "
                    f"and the loss oscillates or explodes", code="optimizer.extreme-momentum",
                    severity=Severity.WARNING)
            dampening = _num(group.get("dampening"))
            if momentum and 0 < momentum < 1 and dampening is not None and dampening >= 1:
                bad("dampening", dampening, "dampening=0 (or < 1)", "with dampening >= 1 no new gradient "
                    "enters the momentum buffer after the first step, so the model stops following the loss")
            alpha = _num(group.get("alpha"))
            if alpha is not None and "RMSprop" in cls and alpha >= 1:
                bad("alpha", alpha, "alpha in [0, 1), usually 0.99", "with alpha >= 1 the running average "
                    "of squared gradients never updates, so steps are grad/eps: enormous")
            betas = group.get("betas")
            if isinstance(betas, (tuple, list)) and len(betas) == 2:
                self._betas(betas, bad)
            eps = _num(group.get("eps"))
            if eps is not None and ("betas" in group or "alpha" in group or "Adagrad" in cls):
                self._eps(eps, group, bad)
        return out

    @staticmethod
    def _betas(betas: Any, bad: Any) -> None:
        b1, b2 = _num(betas[0]), _num(betas[1])
        if b1 is None or b2 is None:
            return
        if not (0 <= b1 < 1 and 0 <= b2 < 1):
            bad("betas", (b1, b2), "each beta in [0, 1)", "a beta outside [0, 1) makes the moment "
                "estimates diverge", code="optimizer.adam-betas")
        elif b1 > math.sqrt(b2):
            swapped = " (they look swapped)" if b2 < b1 else ""
            bad("betas", (b1, b2), "beta1 < sqrt(beta2), e.g. (0.9, 0.999)",
                f"beta1 exceeds sqrt(beta2){swapped}: the first moment outlasts the second, the "
                f"update m/sqrt(v) can grow far beyond lr and Adam may diverge",
                code="optimizer.adam-betas", severity=Severity.WARNING)
        elif b1 >= MOMENTUM_EXTREME:
            bad("betas", (b1, b2), "beta1 around 0.9 (0.5-0.95)", f"beta1={b1} averages the gradient over "
                f"~{round(1 / (1 - b1))} steps: the update follows the loss so late that it overshoots and "
                f"oscillates", code="optimizer.extreme-momentum", severity=Severity.WARNING)

    @staticmethod
    def _eps(eps: float, group: dict[str, Any], bad: Any) -> None:
        if eps <= 0:
            bad("eps", eps, "eps between 1e-12 and 1e-3, usually 1e-8", "with eps=0 every entry "
                "whose gradient is exactly 0 divides 0 by 0 and turns the weight into NaN",
                code="optimizer.adam-eps", severity=Severity.WARNING)
        elif eps < EPS_TINY:
            bad("eps", eps, "eps between 1e-12 and 1e-3, usually 1e-8", f"an eps below {fmt(EPS_TINY)} "
                f"is lost in float32 rounding, so weights whose gradient is ~0 get full-size, "
                f"noise-driven steps", code="optimizer.adam-eps",
                severity=Severity.WARNING)
        elif eps >= EPS_LARGE:
            grads = [p.grad for p in group["params"]
                     if isinstance(p, torch.Tensor) and p.grad is not None and p.grad.numel() > 0
                     and not p.grad.is_sparse]
            if not grads:
                return
            rms = [g.detach().float().square().mean().sqrt() for g in grads]
            values = [v for v in host_floats(rms) if math.isfinite(v) and v > 0]
            if not values:
                return
            typical = statistics.median(values)
            damping = eps / typical
            lr = _num(group.get("lr"))
            sgd_rate = lr / eps if lr is not None else None
            if "betas" not in group and (sgd_rate is None or sgd_rate > SLOW_SGD_RATE):
                return  # (RMSprop/Adagrad: a large eps with a rate to match is a recipe)
            if damping >= EPS_DAMPING:
                like = (f" (it steps like plain SGD at lr/eps = {fmt(sgd_rate)})"
                        if "betas" not in group and sgd_rate is not None else "")
                bad("eps", eps, "eps between 1e-12 and 1e-3, usually 1e-8",
                    f"eps is {fmt(damping)}x the typical gradient size ({fmt(typical)} RMS), so every "
                    f"update shrinks ~{fmt(damping)}x: the adaptive step is gone and training crawls{like}",
                    code="optimizer.adam-eps", severity=Severity.WARNING, grad_rms=typical,
                    damping=damping)

    # ------------------------------------------------------------------ crashes
    def _on_crash(self, event: Crash) -> list[Finding]:
        exc = event.exc
        if not isinstance(exc, ValueError):
            return []
        frames = traceback.extract_tb(exc.__traceback__)
        if not any("torch/optim" in f.filename.replace("\\", "/") for f in frames):
            return []
        text = str(exc)
        for pattern, setting, sane in _TORCH_ERRORS:
            if pattern.search(text):
                user = [f for f in frames if not f.filename.startswith(_INTERNAL)]
                site = code_site(user[-1].filename, user[-1].lineno) if user else ""
                evidence = {"setting": setting, "error": text, "sane": sane, "site": site,
                            "optimizer": "the optimizer", "default": self._DEFAULTS.get(setting, "")}
                msg = (f"the optimizer rejected {setting} ({text}) at {site or 'construction'}: "
                       f"training never started")
                return [self.finding(msg, evidence, location=site or setting)]
        return []


def _num(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, torch.Tensor):
        return float(value) if value.numel() == 1 else None
    if isinstance(value, (int, float)):
        return float(value)
    return None
