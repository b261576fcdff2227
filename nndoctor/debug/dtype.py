"""dtype: float64 models and data, half-precision weights without fp32 master copies, fp16 autocast
without a GradScaler.

Dtype mistakes that make torch raise (float64 data into a float32 model, integer inputs,
float class targets, integer BCE targets) are explained by the crash explainer
(``nndoctor.debug.crash``); the checks here cover the silent ones.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable
from typing import Any

import torch

from nndoctor.checks import Check, register
from nndoctor.findings import Finding, Severity
from nndoctor.monitor.events import ModelInput, RunEnd, StepEvent

__all__ = ["AutocastWithoutGradScaler", "Float64Model", "HalfPrecisionWeights"]

logger = logging.getLogger("nndoctor")

_HALF = (torch.float16, torch.bfloat16)


def _short(dtype: torch.dtype) -> str:
    return str(dtype).replace("torch.", "")


def _first_tensor(args: tuple[Any, ...], kwargs: dict[str, Any]) -> torch.Tensor | None:
    for a in (*args, *kwargs.values()):
        if isinstance(a, torch.Tensor):
            return a
    return None


def _owns_float64(optimizer: torch.optim.Optimizer, params: set[int]) -> bool:
    return any(id(p) in params and p.dtype == torch.float64
               for group in optimizer.param_groups for p in group["params"])


@register
class Float64Model(Check):
    """A model trained in float64 (``model.double()`` on numpy's float64 data): slow, rarely intended.

    Float64 on purpose is ``info`` at most: under ``torch.set_default_dtype(torch.float64)``,
    or when the model is optimised by L-BFGS (a quasi-Newton method: its curvature pairs and
    line search difference nearly equal losses and gradients, where float32's 7 digits run
    out; float64 is the usual choice there). The verdict waits for the first optimizer step,
    so the optimizer is known.
    """

    code = "dtype.float64-model"
    needs = ("model_input", "step", "end")
    sampled_only = frozenset({"model_input", "step"})
    step_phases = frozenset({"pre"})

    def __init__(self, state: Any) -> None:
        super().__init__(state)
        self._seen: set[int] = set()
        # model id -> (message head, evidence, location, float64 parameter ids, default float64)
        self._pending: dict[int, tuple[str, dict[str, Any], str, set[int], bool]] = {}

    def check(self, event: ModelInput | StepEvent | RunEnd) -> Iterable[Finding]:
        if isinstance(event, ModelInput):
            self._on_input(event)
            return ()
        if isinstance(event, StepEvent) and event.phase != "pre":
            return ()
        optimizers = [opt for _, opt in self.state.live_optimizers()]
        if isinstance(event, StepEvent):
            optimizers.append(event.optimizer)
        return [self._judge(optimizers, *self._pending.pop(key)) for key in list(self._pending)]

    def _on_input(self, event: ModelInput) -> None:
        if not event.sampled or id(event.model) in self._seen:
            return
        self._seen.add(id(event.model))
        n64, total, first, ids = 0, 0, "", set()
        for name, p in event.model.named_parameters():
            total += p.numel()
            if p.dtype == torch.float64:
                n64 += p.numel()
                ids.add(id(p))
                first = first or f"{event.name}.{name}"
        if not n64:
            return
        x = _first_tensor(event.args, event.kwargs)
        x_dtype = _short(x.dtype) if x is not None else "none"
        ev = {"model": event.name, "float64_parameters": n64, "parameters": total, "first": first,
              "input_dtype": x_dtype, "input_shape": tuple(x.shape) if x is not None else (),
              "default_dtype": _short(torch.get_default_dtype()), "step": event.step}
        head = (f"{event.name} trains in float64: {n64:,} of {total:,} parameters (e.g. {first}) are float64 and "
                f"its input is {x_dtype} {ev['input_shape']}; float64 is several times slower than float32 and ")
        self._pending[id(event.model)] = (head, ev, event.name, ids,
                                          torch.get_default_dtype() == torch.float64)

    def _judge(self, optimizers: list[torch.optim.Optimizer], head: str, ev: dict[str, Any], location: str,
               ids: set[int], default64: bool) -> Finding:
        lbfgs = [type(opt).__name__ for opt in optimizers
                 if isinstance(opt, torch.optim.LBFGS) and _owns_float64(opt, ids)]
        ev["optimizer"] = lbfgs[0] if lbfgs else None
        if default64:
            why = "torch.set_default_dtype(torch.float64) is in effect, so this looks deliberate"
        elif lbfgs:
            why = (f"it is optimised by {lbfgs[0]}, a quasi-Newton method that differences nearly equal "
                   "losses and gradients, where float64 is the usual, deliberate choice")
        else:
            why = "usually unintended: numpy data is float64 by default and .double() makes the model match it"
        deliberate = default64 or bool(lbfgs)
        return self.finding(head + why, ev, location=location,
                            severity=Severity.INFO if deliberate else Severity.WARNING)


@register
class HalfPrecisionWeights(Check):
    """An optimizer updating float16/bfloat16 weights directly, with no float32 master copy."""

    code = "dtype.half-precision-weights"
    needs = ("step",)
    step_phases = frozenset({"pre"})
    sampled_only = frozenset({"step"})

    def __init__(self, state: Any) -> None:
        super().__init__(state)
        self._seen: set[int] = set()

    def check(self, event: StepEvent) -> Iterable[Finding]:
        if event.phase != "pre" or not event.sampled or id(event.optimizer) in self._seen:
            return ()
        self._seen.add(id(event.optimizer))
        n_half, total, names, dtype, device = 0, 0, [], None, "cpu"
        for group in event.optimizer.param_groups:
            for p in group["params"]:
                total += 1
                if p.dtype in _HALF and p.requires_grad:
                    n_half += 1
                    dtype, device = dtype or p.dtype, p.device.type
                    if len(names) < 3:
                        names.append(self.state.param_name(p))
        if not n_half or dtype is None:
            return ()
        eps = event.optimizer.param_groups[0].get("eps")
        eps_note = ""
        if dtype == torch.float16 and isinstance(eps, float) and 0 < eps < 6e-8:
            eps_note = f"; its eps={eps:g} rounds to 0 in float16, so steps can blow up"
        resolution = "about 0.1%" if dtype == torch.float16 else "about 0.4%"
        ev = {"optimizer": event.optimizer_name, "optimizer_class": type(event.optimizer).__name__,
              "dtype": _short(dtype), "device": device, "half_tensors": n_half, "tensors": total,
              "examples": names, "eps": eps, "step": event.step}
        return [self.finding(
            f"{event.optimizer_name} ({type(event.optimizer).__name__}) updates {n_half} of {total} parameter "
            f"tensors in {_short(dtype)} directly (e.g. {', '.join(names)}) with no float32 master weights: "
            f"updates smaller than {_short(dtype)} resolution ({resolution} of a weight) are rounded away"
            f"{eps_note}", ev, location=event.optimizer_name)]


@register
class AutocastWithoutGradScaler(Check):
    """Forward passes under float16 autocast, but ``optimizer.step`` is not called through a GradScaler."""

    code = "dtype.autocast-fp16-without-grad-scaler"
    needs = ("model_input", "step")
    step_phases = frozenset({"pre"})
    sampled_only = frozenset({"model_input", "step"})

    def __init__(self, state: Any) -> None:
        super().__init__(state)
        self._device: str | None = None
        self._model = ""
        self._done = False

    def check(self, event: ModelInput | StepEvent) -> Iterable[Finding]:
        if self._done:
            return ()
        if isinstance(event, ModelInput):
            if self._device is None and event.grad_enabled and event.sampled:
                self._device = _fp16_autocast_device()
                self._model = event.name
            return ()
        if self._device is None or event.phase != "pre":
            return ()
        self._done = True
        self.retire()  # (its verdict is given: nothing more to hear but the end)
        if _called_by_grad_scaler():
            return ()
        ev = {"model": self._model, "device": self._device, "optimizer": event.optimizer_name,
              "step": event.step}
        return [self.finding(
            f"{self._model} runs under torch.autocast({self._device!r}, dtype=torch.float16) but "
            f"{event.optimizer_name}.step() is not called through a GradScaler: small float16 gradients "
            "underflow to 0 and those updates are silently lost", ev, location=event.optimizer_name)]


def _fp16_autocast_device() -> str | None:
    for device in ("cuda", "cpu", "xpu", "mps"):
        try:
            if torch.is_autocast_enabled(device) and torch.get_autocast_dtype(device) == torch.float16:
                return device
        except (RuntimeError, TypeError, AttributeError):
            continue
    return None


def _called_by_grad_scaler() -> bool:
    frame = sys._getframe(1)
    while frame is not None:
        if frame.f_code.co_filename.endswith("grad_scaler.py"):
            return True
        frame = frame.f_back
    return False
