"""Loss targets that are random noise the script drew in the same step (noise prediction).

A diffusion model (DDPM's epsilon-prediction), a denoising score-matching model or a noise
estimator is trained to predict the noise the script itself drew for this batch:
``noise = torch.randn_like(x0)``, ``x_t = a * x0 + b * noise``, ``loss = mse(model(x_t, t), noise)``.
The constant prediction (zero) costs the noise's variance, and much of that cannot be avoided
(at small noise levels ``x_t`` barely shows the noise): the floor of such a loss is unknown and
often close to the constant prediction's, so a flat loss there says little about the model.

:class:`NoiseTargets` follows, on sampled steps (``op`` events, outside the model's modules), the
tensors made by random functions (``randn``/``randn_like``/``rand``/``rand_like``/``normal``,
in-place ``normal_``/``uniform_``), through scaling by a number and views/copies/casts, and the
tensors mixed from them by arithmetic or concatenation (``a * x0 + b * noise``, ``cat``). It counts
the training loss calls whose target is such a draw while the same step's model input was mixed
from it: the model sees the noise it must predict. Once at least ``MIN_SAMPLES`` such calls make
up at least half of the loss calls of the steps seen, ``state.extra[NOISE_TARGET_KEY]`` is set;
:func:`noise_target` reads it. A target that is data plus noise (label noise, jittered regression
targets) is data, and random targets that never reach the input (a placeholder left in) are no
task at all: neither is counted.
"""

from __future__ import annotations

import weakref
from typing import Any

import torch

from nndoctor.monitor.events import LossCall, ModelInput, OpCall

__all__ = ["NOISE_OPS", "NOISE_TARGET_KEY", "MIN_SAMPLES", "NoiseTargets", "RANDOM_OPS", "is_number", "noise_target"]

NOISE_TARGET_KEY = "nndoctor.noise_target"  # state.extra: {"samples": n, "of": m}
MIN_SAMPLES = 2
#: functions that draw random tensors (also followed by monitor/checks/input_noise.py)
RANDOM_OPS = frozenset({"randn", "randn_like", "rand", "rand_like", "normal", "normal_", "uniform_"})
_SCALE = frozenset({"mul", "rmul", "div", "truediv", "neg"})
_PASS = frozenset({"to", "float", "double", "view", "reshape", "contiguous", "detach", "clone", "flatten"})
_MIX = frozenset({"add", "radd", "sub", "rsub", "mul", "rmul", "div", "truediv", "addcmul", "cat", "concat",
                  "concatenate", "stack", "sqrt", "pow"}) | _PASS
#: the functions :class:`NoiseTargets` wants as ``op`` events
NOISE_OPS = RANDOM_OPS | _SCALE | _MIX
_TABLE = 256  # random tensors remembered (this step's only)


def is_number(v: Any) -> bool:
    """A Python number or a 0-d tensor (a scale factor, not a tensor of values)."""
    return (isinstance(v, (int, float)) and not isinstance(v, bool)) or (
        isinstance(v, torch.Tensor) and v.dim() == 0)


class NoiseTargets:
    """Counts the training loss calls whose target is a random tensor drawn by the script."""

    def __init__(self, state: Any) -> None:
        self.state = state
        self._drawn: dict[int, tuple[weakref.ReferenceType[torch.Tensor], int]] = {}  # id -> (ref, step)
        self._mixed: dict[int, tuple[weakref.ReferenceType[torch.Tensor], int]] = {}  # computed from a draw
        self._input_steps: set[int] = set()  # steps whose training model input was mixed from a draw
        self._seen_steps: set[int] = set()  # steps whose ops were seen (sampled steps)
        self.samples = 0  # loss calls on those steps with a random target...
        self.calls = 0  # ...of all the training loss calls on those steps

    def _is_drawn(self, t: Any, table: dict[int, Any] | None = None) -> bool:
        if not isinstance(t, torch.Tensor):
            return False
        entry = (self._drawn if table is None else table).get(id(t))
        return entry is not None and entry[0]() is t and entry[1] == self.state.step

    def _carries(self, t: Any) -> bool:
        return self._is_drawn(t) or self._is_drawn(t, self._mixed)

    def _remember(self, t: torch.Tensor, table: dict[int, Any] | None = None) -> None:
        table = self._drawn if table is None else table
        step = self.state.step
        if len(table) >= _TABLE:
            for k in [k for k, (ref, s) in table.items() if s != step or ref() is None]:
                del table[k]
            if len(table) >= _TABLE:
                return
        table[id(t)] = (weakref.ref(t), step)

    def on_op(self, event: OpCall) -> None:
        if event.module:
            return  # inside the model: dropout masks, noise layers, not the script's targets
        self._seen_steps.add(event.step)
        if len(self._seen_steps) > 64:
            self._seen_steps = {s for s in self._seen_steps if s >= event.step - 8}
        result = event.result
        if not isinstance(result, torch.Tensor) or not result.is_floating_point():
            return
        name, args = event.name, event.args
        if name in RANDOM_OPS:
            if name == "normal" and isinstance(args[0] if args else None, torch.Tensor) \
                    and args[0].dim() >= 1:
                return  # torch.normal(x, std): x plus noise, data
            self._remember(result)
            return
        first = args[0] if args else None
        if self._is_drawn(first):
            if name in _PASS or name == "neg":
                self._remember(result)
                return
            if name in _SCALE:
                other = args[1] if len(args) > 1 else event.kwargs.get("other")
                if is_number(other):
                    self._remember(result)  # sigma * noise, -noise / sigma with a number
                    return
        if name in _MIX and any(self._carries(a) for a in _tensors(args)):
            self._remember(result, self._mixed)  # a * x0 + b * noise, cat([x_t, t])

    def on_input(self, event: ModelInput) -> None:
        if event.sampled and event.training and event.grad_enabled and any(
                self._carries(a) for a in _tensors((*event.args, *event.kwargs.values()))):
            self._input_steps.add(event.step)
            if len(self._input_steps) > 64:
                self._input_steps = {s for s in self._input_steps if s >= event.step - 8}

    def on_loss(self, event: LossCall) -> None:
        if not event.grad_enabled or event.step not in self._seen_steps:
            return
        self.calls += 1
        if event.step in self._input_steps and self._is_drawn(event.target):
            self.samples += 1
        if self.samples >= MIN_SAMPLES and 2 * self.samples >= self.calls:
            self.state.extra[NOISE_TARGET_KEY] = {"samples": self.samples, "of": self.calls}
        else:
            self.state.extra.pop(NOISE_TARGET_KEY, None)


def _tensors(args: Any) -> list[Any]:
    """The arguments, with the tensors of a list or tuple argument (``cat``'s) taken out."""
    out: list[Any] = []
    for a in args:
        out.extend(a if isinstance(a, (list, tuple)) else (a,))
    return out


def noise_target(state: Any) -> bool:
    """The training loss's target is random noise drawn by the script in the step (noise prediction:
    a diffusion or denoising score-matching objective), seen at ``MIN_SAMPLES`` sampled loss calls."""
    found = state.extra.get(NOISE_TARGET_KEY)
    return bool(found) and found.get("samples", 0) >= MIN_SAMPLES
