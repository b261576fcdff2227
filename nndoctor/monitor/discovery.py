"""Finding the user's models and optimizers, and the names the script gave them
(mixed into :class:`~nndoctor.monitor.observer.Observer`)."""

from __future__ import annotations

import sys
import weakref
from typing import Any, Callable

import torch

from nndoctor.monitor.births import births
from nndoctor.monitor.functions import _INTERNAL_DIRS
from nndoctor.monitor.state import ModelInfo, OptimizerInfo
from nndoctor.monitor.tensors import materialised

__all__ = ["Discovery"]


class Discovery:
    """Registers models (per-root forward pre-hook, names of submodules and parameters) and
    optimizers (parameter names), named after the script's own variables."""

    # provided by the Observer
    state: Any
    _by_kind: dict[str, list[Any]]
    _heavy: bool
    _root_handles: dict[int, Any]
    _heavy_handles: list[Any]
    _first_optimizer: OptimizerInfo | None
    _root_pre: Callable[..., None]
    _hook_param: Callable[[torch.Tensor, str], None]
    _wake_for_model: Callable[[torch.nn.Module], None]
    _refresh_fast_backward: Callable[[], None]
    _hook_loads: Callable[[torch.nn.Module], None]

    def _register_model(self, module: torch.nn.Module, name: str | None = None) -> ModelInfo:
        info = self.state.models.get(id(module))
        if info is not None:
            return info
        if not name:
            # the script's variable; else its path inside a model already watched (a LightningModule's
            # ``self.encoder`` called on its own); else its class
            name = (self._name_for(module, default="") or self._path_in_models(module)
                    or type(module).__name__.lower())
        taken = {i.name for i in self.state.models.values()}
        base, n = name, 2
        while name in taken:
            name, n = f"{base}{n}", n + 1
        names = {}
        for path, sub in module.named_modules():
            names.setdefault(id(sub), f"{name}.{path}" if path else name)
        info = ModelInfo(ref=weakref.ref(module), name=name, module_names=names, cls=type(module).__name__,
                         parameters=sum(p.numel() for p in module.parameters() if materialised(p)))
        self.state.models[id(module)] = info
        for path, param in module.named_parameters():
            self.state.param_names.setdefault(id(param), f"{name}.{path}")
            self.state.param_refs.setdefault(id(param), weakref.ref(param))
        if not isinstance(module, torch.jit.ScriptModule):  # (they take no Python hook)
            self._root_handles[id(module)] = module.register_forward_pre_hook(
                self._root_pre, with_kwargs=True
            )
        self._hook_loads(module)
        self._wake_for_model(module)  # (routes.py: the checks of a module type it holds)
        if self._heavy and "grad" in self._by_kind:
            for path, param in module.named_parameters():
                if param.requires_grad and materialised(param):  # (a lazy one: from the next sampled step)
                    self._hook_param(param, f"{name}.{path}")
        return info

    def _path_in_models(self, module: torch.nn.Module) -> str:
        for info in list(self.state.models.values()):
            path = info.module_names.get(id(module))
            owner = info.ref()
            if path and owner is not None and any(sub is module for sub in owner.modules()):
                return path
        return ""

    def _register_optimizer(self, opt: torch.optim.Optimizer) -> OptimizerInfo:
        info = self.state.optimizers.get(id(opt))
        if info is not None and info.ref() is opt:
            return info
        # (an entry whose optimizer was freed and whose id this new one reuses is replaced)
        name = self._name_for(opt, default=type(opt).__name__.lower())
        state = self.state
        if not state.optimizers and state.step > 1:
            # the backward calls so far were counted as the steps of a script without optimizer
            # (see Observer._on_backward): they were this first optimizer's first step
            state.step = 1
            state.losses.cap_steps(1)
            state.eval_losses.cap_steps(1)
            for curve in state.eval_by_model.values():
                curve.cap_steps(1)
        for key, old in list(state.optimizers.items()):
            if old.name == name and old.cls == type(opt).__name__ and old.ref() is None:
                del state.optimizers[key]  # the variable was rebound to a new optimizer: one entry per name
        info = OptimizerInfo(ref=weakref.ref(opt), name=name, cls=type(opt).__name__,
                             lr=opt.param_groups[0].get("lr") if opt.param_groups else None)
        self.state.optimizers[id(opt)] = info
        self._refresh_fast_backward()
        if self._first_optimizer is None or self._first_optimizer.ref() is None:
            self._first_optimizer = info
        births(state).add(opt, name, state.step, info)
        for gi, group in enumerate(opt.param_groups):
            for pi, param in enumerate(group["params"]):
                self.state.param_names.setdefault(id(param), f"{name}.param_groups[{gi}][{pi}]")
                self.state.param_refs.setdefault(id(param), weakref.ref(param))
        return info

    def _name_for(self, obj: Any, default: str, *, outermost: bool = False) -> str:
        """The variable name the user's script gave ``obj``: a global there, else a local of the
        innermost calling frame (``outermost``: of the outermost one, the caller's name rather
        than a helper's parameter name)."""
        scopes = [self.state.script_globals] if self.state.script_globals else []
        main = sys.modules.get("__main__")
        if main is not None:
            scopes.append(vars(main))
        for scope in scopes:
            for key, value in list(scope.items()):
                if value is obj and not key.startswith("_"):
                    return key
        # a local of the calling frames (e.g. ``model`` inside main())
        found = default
        frame = sys._getframe(1)
        while frame is not None:
            if not frame.f_code.co_filename.startswith(_INTERNAL_DIRS):
                for key, value in frame.f_locals.items():
                    if value is obj and not key.startswith("_") and key != "self":
                        if not outermost:
                            return key
                        found = key
                        break
            frame = frame.f_back
        return found
