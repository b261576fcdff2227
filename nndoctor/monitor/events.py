"""What the observer sees, as plain records handed to checks.

Each record has a ``kind`` (the string a check lists in ``needs``). Tensors inside
records are the user's live tensors: checks must only read them (under ``no_grad``),
never modify them, and must not keep references beyond the call.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import torch

from nndoctor.monitor.tensors import zero_flag

__all__ = [
    "BackwardCall",
    "Crash",
    "CurveDue",
    "EvalInput",
    "GradContribution",
    "LossCall",
    "ModelInput",
    "ModuleOutput",
    "OpCall",
    "Provenance",
    "RunEnd",
    "StateLoad",
    "StepEvent",
    "Targets",
    "reduction_of",
]


def reduction_of(kwargs: dict[str, Any]) -> str | None:
    """The reduction a loss call applies: ``reduction``, unless the legacy ``size_average`` /
    ``reduce`` arguments are given (``size_average=False``: a sum); None for per-element losses."""
    size_average, reduce = kwargs.get("size_average"), kwargs.get("reduce")
    if size_average is None and reduce is None:
        red = kwargs.get("reduction")
        return str(red) if red is not None else "mean"
    # the legacy arguments win over ``reduction`` (torch's _Reduction.legacy_get_string)
    if reduce is False:
        return None  # per element
    return "sum" if size_average is False else "mean"


@dataclass(frozen=True)
class Provenance:
    """How a tensor was produced: the op (``softmax``, ``sigmoid``...), its dim, its module."""

    op: str
    dim: int | None = None
    module: str = ""
    input_shape: tuple[int, ...] = ()


@dataclass
class OpCall:
    """A torch function call seen by the function mode (sampled steps only)."""

    kind = "op"
    name: str  # normalised: "softmax", "sub", "log"...
    func: Callable[..., Any]
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    result: Any
    step: int
    module: str = ""  # innermost user module running when the op was called
    site: str = ""  # file:line in user code (filled lazily by ``site()``)
    input_provenance: tuple[Provenance | None, ...] = ()


@dataclass
class LossCall:
    """A call of a loss function (functional or module form)."""

    kind = "loss"
    name: str  # "cross_entropy", "mse_loss", ...
    input: torch.Tensor
    target: torch.Tensor | None
    kwargs: dict[str, Any]
    result: Any
    step: int
    provenance: Provenance | None = None
    site: str = ""
    grad_enabled: bool = True
    #: positional arguments after the first two (the +1/-1 labels of margin_ranking_loss and
    #: cosine_embedding_loss, whose second argument is another input)
    rest: tuple[Any, ...] = ()

    @property
    def reduction(self) -> str | None:
        """``mean``, ``sum``, or None for a per-element loss (see :func:`reduction_of`)."""
        return reduction_of(self.kwargs)


@dataclass
class Targets:
    """The targets of one batch, with what the model predicted for it when that is known.

    Sent for loss calls on sampled steps and in evaluation loops (``name`` is the loss:
    ``"cross_entropy"``...), and for comparisons of predicted class indices with targets
    (``name == "compare"``, ``input`` the indices, e.g. ``(out.argmax(1) == y)``).
    ``training`` is whether gradients were enabled (a training step, not an evaluation).
    """

    kind = "targets"
    name: str
    input: torch.Tensor
    target: torch.Tensor
    kwargs: dict[str, Any]
    step: int
    training: bool


@dataclass
class ModelInput:
    """A forward call of a root model (a module not called from inside another one)."""

    kind = "model_input"
    model: torch.nn.Module
    name: str
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    step: int
    training: bool
    grad_enabled: bool
    sampled: bool


@dataclass
class EvalInput(ModelInput):
    """A root-model forward without gradient (an evaluation or inference batch), on any step."""

    kind = "eval_input"


@dataclass
class CurveDue:
    """The loss history is due for another read: every 25 losses up to 200, then every 1/4 of
    the run so far (1/2 while nothing was found; checks that judge the curve subscribe to this
    instead of every step)."""

    kind = "curve"
    step: int


@dataclass
class ModuleOutput:
    """The output of one module's forward on a sampled step."""

    kind = "module_output"
    module: torch.nn.Module
    name: str  # full path, e.g. "model.layers.3"
    inputs: tuple[Any, ...]
    output: Any
    step: int
    grad_enabled: bool


@dataclass
class StateLoad:
    """``load_state_dict`` of a watched root model has just copied a state into it.

    ``aliased``: the state dict's tensors were the model's own parameters (a "copy" made with
    ``model.state_dict()`` and no ``copy.deepcopy``: loading it changes nothing). ``changed``:
    whether the load changed the weights (a few values compared before and after).
    """

    kind = "state_load"
    model: torch.nn.Module
    name: str
    step: int
    aliased: bool = False
    changed: bool = True


@dataclass
class BackwardCall:
    """``loss.backward()`` / ``torch.autograd.backward`` before the real backward runs."""

    kind = "backward"
    tensor: torch.Tensor
    step: int
    index: int  # number of backward calls so far (0-based)
    sampled: bool


@dataclass
class GradContribution:
    """One gradient contribution arriving at a parameter (sampled steps only)."""

    kind = "grad"
    param: torch.nn.Parameter
    name: str
    grad: torch.Tensor
    step: int
    _zero: torch.Tensor | bool | None = field(default=None, init=False, repr=False, compare=False)

    def grad_zero(self) -> torch.Tensor | bool:
        """Whether ``grad`` is all zero (:func:`~nndoctor.monitor.tensors.zero_flag`: a 0-d bool
        tensor, no host sync), read once for the checks that all ask."""
        if self._zero is None:
            self._zero = zero_flag(self.grad)
        return self._zero


@dataclass
class StepEvent:
    """An optimizer step: ``phase`` is ``"pre"`` (grads ready) or ``"post"`` (params updated)."""

    kind = "step"
    optimizer: torch.optim.Optimizer
    optimizer_name: str
    phase: str
    step: int  # global optimizer-step counter (1-based after the first step)
    optimizer_step: int  # this optimizer's own counter
    sampled: bool
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Crash:
    """The user's script raised: what nndoctor knew at that moment."""

    kind = "crash"
    exc: BaseException
    step: int
    module_stack: tuple[str, ...]  # user modules running, outermost first
    module_inputs: tuple[Any, ...]  # inputs of the innermost module, if known
    op: OpCall | None  # the torch call that raised, if seen


@dataclass
class RunEnd:
    """The run ended (normally, by ``--max-steps``, or after a crash)."""

    kind = "end"
    step: int
    reason: str  # "finished", "max-steps", "crash", "interrupted"
    #: ``time.perf_counter()`` by which the end-of-run analysis should be done (see
    #: :mod:`nndoctor.monitor.ending`): a costly check compares its estimate with :meth:`time_left`
    deadline: float = math.inf
    #: what was left out to keep the budget (``"check: why"``), reported as a note in the facts
    skipped: list[str] = field(default_factory=list)

    def time_left(self) -> float:
        """Seconds left of the end-of-run budget (``inf`` without one)."""
        return self.deadline - time.perf_counter()
