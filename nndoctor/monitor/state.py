"""What the observer knows about the run, shared read-only with every check."""

from __future__ import annotations

import weakref
from dataclasses import dataclass, field
from typing import Any

import torch

from nndoctor.monitor.history import History

__all__ = ["ModelInfo", "OptimizerInfo", "RunState"]


@dataclass
class ModelInfo:
    """A root model: a module called from outside any other module, with parameters."""

    ref: weakref.ReferenceType[torch.nn.Module]
    name: str
    module_names: dict[int, str]  # id(submodule) -> full path ("model.fc1")
    train_forward_calls: int = 0
    eval_forward_calls: int = 0
    grad_training: bool | None = None  # module.training at its latest forward with gradient
    flip_clock: int = -1  # the step at which that mode last changed (observer/forward.py)
    unboosted: tuple[int, int, int] = (-1, 0, 0)  # the sampling schedule before that change boosted it
    cls: str = ""  # class name and size, kept for the report after the model is freed
    parameters: int = 0
    train_key: tuple[str, bool, bool] = field(init=False, repr=False)  # RunState.last_forward of a training forward

    def __post_init__(self) -> None:
        self.train_key = (self.name, True, True)

    @property
    def forward_calls(self) -> int:
        return self.train_forward_calls + self.eval_forward_calls

    @property
    def module(self) -> torch.nn.Module | None:
        return self.ref()


@dataclass
class OptimizerInfo:
    ref: weakref.ReferenceType[torch.optim.Optimizer]
    name: str
    steps: int = 0
    cls: str = ""
    lr: float | None = None  # the last lr seen, kept for the report after the optimizer is freed
    backwards_at_post: int | None = None  # state.backward_calls when this optimizer last stepped
    last_step: int = 0  # the run step of its latest step

    @property
    def optimizer(self) -> torch.optim.Optimizer | None:
        return self.ref()


@dataclass
class RunState:
    """Counters, discovered models/optimizers and parameter names for one run."""

    step: int = 1  # 1-based index of the training step in progress (optimizer steps + 1)
    backward_calls: int = 0
    forward_calls: int = 0
    forwards_at_backward: int = 0  # forward_calls at the latest backward (later forwards: evaluations)
    sampled: bool = True
    models: dict[int, ModelInfo] = field(default_factory=dict)
    optimizers: dict[int, OptimizerInfo] = field(default_factory=dict)
    param_names: dict[int, str] = field(default_factory=dict)  # id(param) -> "model.fc1.weight"
    param_refs: dict[int, weakref.ReferenceType[torch.Tensor]] = field(default_factory=dict)
    used_params: set[int] = field(default_factory=set)  # params of modules seen in a forward
    params_with_grad: set[int] = field(default_factory=set)
    losses: History = field(default_factory=lambda: History("loss"))
    eval_losses: History = field(default_factory=lambda: History("eval_loss"))
    #: the same evaluation losses, by the model that made them (``""``: not known): several models
    #: evaluated in one run (compared side by side, or a model and its averaged copy) each have a curve
    eval_by_model: dict[str, History] = field(default_factory=dict)
    lrs: History = field(default_factory=lambda: History("lr"))
    extra: dict[str, Any] = field(default_factory=dict)
    script_globals: dict[str, Any] | None = None
    observer: Any = None  # the Observer, for provenance look-ups and boost()
    loaders: Any = None  # the LoaderTracker: which DataLoader the latest batch came from
    last_forward: tuple[str, bool, bool] | None = None  # latest root forward: (model, training, grad enabled)

    def record_eval(self, step: int, value: torch.Tensor | float, model: str = "") -> None:
        """An evaluation loss: into ``eval_losses`` and the curve of the model that made it."""
        self.eval_losses.record(step, value)
        curve = self.eval_by_model.get(model)
        if curve is None:
            if len(self.eval_by_model) >= 16:  # (a model made anew each evaluation: not a curve of its own)
                return
            curve = self.eval_by_model[model] = History(f"eval_loss:{model}", capacity=1024)
        curve.record(step, value)

    # -- names -------------------------------------------------------------------------
    def module_name(self, module: torch.nn.Module) -> str:
        for info in self.models.values():
            name = info.module_names.get(id(module))
            if name is not None:
                return name
        return type(module).__name__

    def param_name(self, param: torch.Tensor) -> str:
        return self.param_names.get(id(param), f"<parameter {tuple(param.shape)}>")

    def live_models(self) -> list[tuple[ModelInfo, torch.nn.Module]]:
        out = []
        for info in self.models.values():
            module = info.module
            if module is not None:
                out.append((info, module))
        return out

    def live_optimizers(self) -> list[tuple[OptimizerInfo, torch.optim.Optimizer]]:
        out = []
        for info in self.optimizers.values():
            opt = info.optimizer
            if opt is not None:
                out.append((info, opt))
        return out

    def optimizer_params(self) -> set[int]:
        ids: set[int] = set()
        for _, opt in self.live_optimizers():
            for group in opt.param_groups:
                ids.update(id(p) for p in group["params"])
        return ids

    def model_of_param(self, param_id: int) -> ModelInfo | None:
        name = self.param_names.get(param_id)
        if name is None:
            return None
        root = name.split(".", 1)[0]
        for info in self.models.values():
            if info.name == root:
                return info
        return None
