"""The observer: installs PyTorch's global hooks, turns what it sees into events for checks.

Cheap probes are always on: global optimizer step pre/post hooks, a thin wrapper around
``torch.autograd.backward`` (loss history, backward counting) and one forward pre-hook
per discovered root model. Heavy probes (a torch function mode that sees functional
calls such as ``F.cross_entropy``, global per-module forward hooks and parameter grad
hooks) are switched on only for sampled steps (see :class:`Schedule`).

Everything is installed in :meth:`Observer.__enter__` and removed in ``finally``. An
exception inside a check is caught, reported as an internal error and that check is
switched off: the user's training always carries on, with unchanged results.
"""

from __future__ import annotations

import logging
import math
import os
import sys
import threading
import time
import traceback
import weakref
from typing import Any, Callable, Iterable

import torch
import torch.nn.modules.module as module_hooks
import torch.optim.optimizer as optimizer_hooks
from torch.overrides import TorchFunctionMode
from torch.utils.hooks import RemovableHandle

from nndoctor.checks import Check, registered
from nndoctor.findings import Finding, InternalError, Report
from nndoctor.monitor.events import (
    BackwardCall,
    Crash,
    CurveDue,
    EvalInput,
    GradContribution,
    LossCall,
    ModelInput,
    ModuleOutput,
    OpCall,
    Provenance,
    RunEnd,
    StepEvent,
    Targets,
)
from nndoctor.monitor.loaders import LoaderTracker
from nndoctor.monitor.sampling import Schedule
from nndoctor.monitor.sink import FindingSink
from nndoctor.monitor.state import ModelInfo, OptimizerInfo, RunState

__all__ = ["LOSS_FUNCTIONS", "Observer", "op_name", "user_site"]

logger = logging.getLogger("nndoctor")

LOSS_FUNCTIONS = frozenset(
    {
        "cross_entropy",
        "nll_loss",
        "mse_loss",
        "l1_loss",
        "smooth_l1_loss",
        "huber_loss",
        "binary_cross_entropy",
        "binary_cross_entropy_with_logits",
        "kl_div",
        "poisson_nll_loss",
        "gaussian_nll_loss",
        "soft_margin_loss",
        "multilabel_soft_margin_loss",
        "multi_margin_loss",
        "multilabel_margin_loss",
        "hinge_embedding_loss",
        "margin_ranking_loss",
        "cosine_embedding_loss",
        "triplet_margin_loss",
        "ctc_loss",
    }
)

#: ops whose output we label with where it came from
PROVENANCE_OPS = frozenset(
    {"softmax", "log_softmax", "sigmoid", "logsigmoid", "tanh", "relu", "relu6", "softplus",
     "elu", "gelu", "hardtanh", "hardsigmoid", "log", "exp", "abs", "square", "clamp",
     "log_sigmoid", "special_expit"}
)
#: other names torch gives the same op (F.logsigmoid is ``log_sigmoid``, torch.special.expit is sigmoid)
_PROVENANCE_ALIASES = {"log_sigmoid": "logsigmoid", "special_expit": "sigmoid"}
#: ops that carry a provenance label through unchanged values (views, copies, casts)
PASS_THROUGH_OPS = frozenset(
    {"view", "reshape", "squeeze", "unsqueeze", "flatten", "contiguous", "clone", "to", "float",
     "double", "half", "cpu", "cuda", "view_as", "reshape_as", "detach", "squeeze_", "unsqueeze_",
     "type", "expand", "expand_as",
     # indexing keeps the values' nature (a column of softmax output is still probabilities)
     "getitem", "select", "narrow"}
)

#: ops that make predicted class indices, and the comparisons of those with targets
PREDICTION_OPS = frozenset({"argmax", "max"})
COMPARE_OPS = frozenset({"eq", "ne"})

#: losses between reads of the loss history at the start (then every 1/8 of the run)
CURVE_EVERY = 25

#: root-model forwards without grad after a step whose losses are recorded as evaluation losses
EVAL_LOSS_FORWARDS = 64

_NAME_CACHE: dict[Any, str] = {}

#: bumped in a forked child (DataLoader workers...): an observer only acts in the process that
#: made it. Comparing with this counter is cheaper than an ``os.getpid()`` system call per hook.
_FORKS = [0]


def _after_fork() -> None:
    _FORKS[0] += 1


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork)
_INTERNAL_DIRS = (
    os.path.dirname(torch.__file__),
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
)


def op_name(func: Callable[..., Any]) -> str:
    """A normalised name for a torch function or Tensor method: ``__sub__`` -> ``sub``."""
    try:
        return _NAME_CACHE[func]
    except (KeyError, TypeError):
        pass
    name = getattr(func, "__name__", None) or str(func)
    if name.startswith("__") and name.endswith("__") and len(name) > 4:
        name = name[2:-2]
    try:
        _NAME_CACHE[func] = name
    except TypeError:
        pass
    return name


def user_site(skip_internal: bool = True) -> str:
    """``file:line`` of the innermost frame outside torch and nndoctor (the user's code)."""
    frame = sys._getframe(1)
    while frame is not None:
        filename = frame.f_code.co_filename
        if not (skip_internal and (filename.startswith(_INTERNAL_DIRS) or filename.startswith("<"))):
            return f"{os.path.basename(filename)}:{frame.f_lineno}"
        frame = frame.f_back
    return ""


class _Mode(TorchFunctionMode):
    """Sees every torch function call while it is on the stack (sampled steps only)."""

    def __init__(self, observer: Observer) -> None:
        super().__init__()
        self.observer = observer
        self.enabled = True

    def __torch_function__(self, func, types, args=(), kwargs=None):  # type: ignore[override]
        kwargs = kwargs or {}
        obs = self.observer
        if not self.enabled or obs._busy or _FORKS[0] != obs._pid:
            return func(*args, **kwargs)
        name = op_name(func)
        if not obs._heavy:  # light mode: only an evaluation loop's losses are recorded
            result = func(*args, **kwargs)
            if obs._light:
                if name in LOSS_FUNCTIONS:
                    obs._on_eval_loss(name, args, kwargs, result)
                elif name in PREDICTION_OPS or name in COMPARE_OPS:
                    obs._guard("targets", obs._on_prediction_op, name, args, result)
            return result
        try:
            result = func(*args, **kwargs)
        except BaseException:
            obs._failed_op = (name, func, args, kwargs)
            raise
        if name in obs._watched_ops:
            obs._on_op(name, func, args, kwargs, result)
        return result


class Observer:
    """Context manager that observes training and collects findings.

    ``models`` / ``optimizers`` may be given; otherwise they are discovered from the
    modules that are called and the optimizers that step.
    """

    def __init__(
        self,
        models: Iterable[torch.nn.Module] | torch.nn.Module | None = None,
        optimizers: Iterable[torch.optim.Optimizer] | torch.optim.Optimizer | None = None,
        *,
        schedule: Schedule | None = None,
        checks: Iterable[type[Check]] | None = None,
        on_finding: Callable[[Finding], None] | None = None,
        script_globals: dict[str, Any] | None = None,
        max_steps: int | None = None,
        discover: bool = True,
    ) -> None:
        if max_steps is not None and max_steps < 1:
            raise ValueError(f"max_steps must be >= 1, got {max_steps!r}")
        self.schedule = schedule or Schedule()
        self.state = RunState(script_globals=script_globals)
        self.state.observer = self
        self.sink = FindingSink(on_new=on_finding)
        self.max_steps = max_steps
        self.discover = discover
        self._given_models = _as_list(models)
        self._given_optimizers = _as_list(optimizers)
        self._check_classes = list(checks) if checks is not None else registered()
        self.checks: list[Check] = []
        self._by_kind: dict[str, list[Check]] = {}
        self._by_kind_unsampled: dict[str, list[Check]] = {}  # the checks that want unsampled events too
        self._op_checks: dict[str, list[Check]] = {}
        self._watched_ops: frozenset[str] = frozenset()
        self._disabled: set[str] = set()
        self.internal_errors: list[InternalError] = []
        self._handles: list[RemovableHandle] = []
        self._heavy_handles: list[RemovableHandle] = []
        self._root_handles: dict[int, RemovableHandle] = {}
        self._mode: _Mode | None = None
        self.loaders = LoaderTracker(name_for=lambda obj, default: self._name_for(obj, default, outermost=True))
        self.state.loaders = self.loaders
        self._predictions: dict[int, weakref.ReferenceType[torch.Tensor]] = {}
        self._orig_backward: Callable[..., Any] | None = None
        self._busy = False
        self._pid = _FORKS[0]  # fork generation of the process that made this observer
        self._thread = threading.get_ident()
        self._stack: list[torch.nn.Module] = []
        self._stack_inputs: list[tuple[Any, ...]] = []
        self._failed_op: tuple[str, Any, tuple[Any, ...], dict[str, Any]] | None = None
        self._prov: dict[int, tuple[weakref.ReferenceType[torch.Tensor], Provenance]] = {}
        self._heavy = False
        self._light = False  # loss-only function mode during an evaluation loop
        self._forwards_since_tick = 0
        self._curve_read = 0  # state.losses.total at the last CurveDue
        self._first_optimizer: OptimizerInfo | None = None  # its lr is the run's lr history
        self._active = False
        self._started = 0.0
        self.end_reason = "finished"
        self.crash: BaseException | None = None

    # ------------------------------------------------------------------ lifecycle
    def __enter__(self) -> Observer:
        self._started = time.perf_counter()
        self.checks = [cls(self.state) for cls in self._check_classes]
        for check in self.checks:
            for need in check.needs:
                # optimizer steps are dispatched per phase: a check only hears the phases it wants
                for kind in ([f"step.{p}" for p in sorted(check.step_phases)] if need == "step" else [need]):
                    self._by_kind.setdefault(kind, []).append(check)
                    if kind not in check.sampled_only and need not in check.sampled_only:
                        self._by_kind_unsampled.setdefault(kind, []).append(check)
            for name in check.ops:
                self._op_checks.setdefault(name, []).append(check)
        watched = set(self._op_checks) | PROVENANCE_OPS | PASS_THROUGH_OPS
        if "loss" in self._by_kind or "targets" in self._by_kind or self._op_checks:
            watched |= LOSS_FUNCTIONS
        if "targets" in self._by_kind:
            watched |= PREDICTION_OPS | COMPARE_OPS
        self._watched_ops = frozenset(watched)
        try:
            for i, model in enumerate(self._given_models):
                self._register_model(model, name=self._name_for(model, default="model" if i == 0 else f"model{i + 1}"))
            for opt in self._given_optimizers:
                self._register_optimizer(opt)
            self._handles.append(optimizer_hooks.register_optimizer_step_pre_hook(self._step_pre))
            self._handles.append(optimizer_hooks.register_optimizer_step_post_hook(self._step_post))
            self._patch_backward()
            if "targets" in self._by_kind:
                self.loaders.install()
            self._active = True
            self._set_heavy(True)
        except BaseException:
            self._remove_all()
            raise
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            if exc is not None and self.end_reason == "finished":
                if isinstance(exc, KeyboardInterrupt):
                    self.end_reason = "interrupted"
                elif isinstance(exc, Exception):
                    self.on_crash(exc)
        finally:
            self._remove_all()
            self._dispatch(RunEnd(step=self.state.step, reason=self.end_reason))

    def _remove_all(self) -> None:
        self._active = False
        self._set_heavy(False, force=True)
        for handle in self._handles:
            handle.remove()
        self._handles.clear()
        for handle in self._root_handles.values():
            handle.remove()
        self._root_handles.clear()
        self.loaders.remove()
        self._predictions.clear()
        if self._orig_backward is not None:
            torch.autograd.backward = self._orig_backward  # type: ignore[assignment]
            self._orig_backward = None
        self._prov.clear()

    def on_crash(self, exc: BaseException) -> None:
        """Explain a crash of the user's code (called by the runner or ``__exit__``)."""
        self.end_reason = "crash"
        self.crash = exc
        op = None
        if self._failed_op is not None:
            name, func, args, kwargs = self._failed_op
            op = OpCall(name=name, func=func, args=args, kwargs=kwargs, result=None,
                        step=self.state.step, module=self._current_module_name())
        inputs = self._stack_inputs[-1] if self._stack_inputs else ()
        names = tuple(self.state.module_name(m) for m in self._stack)
        self._dispatch(Crash(exc=exc, step=self.state.step, module_stack=names,
                             module_inputs=inputs, op=op))

    def report(self) -> Report:
        """The findings so far, with the facts of the run."""
        self.state.losses.flush()
        facts = {
            "steps": self.state.step - 1 if self.state.step > 0 else 0,
            "backward_calls": self.state.backward_calls,
            "forward_calls": self.state.forward_calls,
            "models": [
                {"name": info.name, "class": info.cls,
                 "parameters": sum(p.numel() for p in info.module.parameters()) if info.module is not None
                 else info.parameters}
                for info in self.state.models.values()
            ],
            "optimizers": [
                {"name": info.name, "class": info.cls, "steps": info.steps,
                 "lr": (info.optimizer.param_groups[0].get("lr") if info.optimizer is not None
                        and info.optimizer.param_groups else info.lr)}
                for info in self.state.optimizers.values()
            ],
            "duration_s": round(time.perf_counter() - self._started, 3) if self._started else 0.0,
            "end": self.end_reason,
            "curves": {h.name: _downsample(*h.series())
                       for h in (self.state.losses, self.state.eval_losses, self.state.lrs) if len(h)},
        }
        for key in ("grad_norms", "activation_health"):
            if key in self.state.extra:
                facts[key] = self.state.extra[key]
        return Report(findings=self.sink.findings(), facts=facts,
                      internal_errors=list(self.internal_errors))

    @property
    def findings(self) -> list[Finding]:
        return self.sink.findings()

    # ------------------------------------------------------------------ dispatch
    def _dispatch(self, event: Any, checks: Iterable[Check] | None = None, kind: str | None = None) -> None:
        heavy = self._heavy
        if checks is None:
            targets = (self._by_kind if heavy else self._by_kind_unsampled).get(kind or event.kind, ())
        else:
            targets = checks
        if not targets:
            return
        was_busy = self._busy
        self._busy = True
        # checks run without autograd on sampled steps and at the end, with one grad-mode switch
        # for all of them; unsampled events (the always-on path) skip the switch: checks only
        # read there, and detach or use no_grad themselves before computing on user tensors
        grad_was = torch.is_grad_enabled()
        if grad_was and (heavy or event.kind in ("end", "crash")):
            torch._C._set_grad_enabled(False)
        disabled = self._disabled
        try:
            for check in targets:
                if disabled and check.name() in disabled:
                    continue
                try:
                    found = check.check(event)
                    if found:
                        for finding in found:
                            self.sink.add(finding)
                except Exception as exc:  # a bug in nndoctor: never the user's problem
                    self._internal_error(check.name(), exc)
        finally:
            if grad_was:
                torch._C._set_grad_enabled(True)
            self._busy = was_busy

    def _internal_error(self, probe: str, exc: BaseException) -> None:
        self._disabled.add(probe)
        detail = "".join(traceback.format_exception_only(type(exc), exc)).strip()
        logger.debug("nndoctor probe %s failed", probe, exc_info=exc)
        self.internal_errors.append(InternalError(probe=probe, error=detail, step=self.state.step))

    def _guard(self, probe: str, fn: Callable[..., Any], *args: Any) -> Any:
        if probe in self._disabled:
            return None
        try:
            return fn(*args)
        except Exception as exc:
            self._internal_error(probe, exc)
            return None

    @property
    def clock(self) -> int:
        """Completed steps: optimizer steps, or backward calls in a script without optimizer."""
        if self.state.optimizers:
            return self.state.step - 1
        return self.state.backward_calls

    def boost(self, steps: int = 5) -> None:
        """Look closely at the next ``steps`` steps (a check saw something suspicious)."""
        self.schedule.boost(self.clock, steps)
        self._set_heavy(True)

    # ------------------------------------------------------------------ heavy probes
    def _set_heavy(self, on: bool, *, force: bool = False) -> None:
        if on == self._heavy and not force:
            if not on and self._mode is not None and not self._light:
                # turned off inside a torch-function call (loss.backward() ticks before the first
                # optimizer step): the mode could not be popped then; pop it now it is on top
                self._pop_mode()
            return
        if on and not self._active:
            return
        if on:
            self._heavy = True
            self._light = False
            if self.discover or self._given_models:
                self._heavy_handles.append(module_hooks.register_module_forward_pre_hook(self._fwd_pre))
                self._heavy_handles.append(module_hooks.register_module_forward_hook(self._fwd_post))
            self._register_grad_hooks()
            self._push_mode()
        else:
            self._heavy = False
            self._light = False
            for handle in self._heavy_handles:
                handle.remove()
            self._heavy_handles.clear()
            self._stack.clear()
            self._stack_inputs.clear()
            self._pop_mode()
            self._prov.clear()

    def _push_mode(self) -> None:
        if self._mode is not None:
            self._mode.enabled = True
            return
        mode = _Mode(self)
        mode.__enter__()
        self._mode = mode

    def _pop_mode(self) -> None:
        mode = self._mode
        if mode is None:
            return
        mode.enabled = False
        try:
            from torch.overrides import _get_current_function_mode

            on_top = _get_current_function_mode() is mode
        except Exception:  # pragma: no cover - private API moved
            on_top = False
        if on_top:
            mode.__exit__(None, None, None)
            self._mode = None
        # otherwise a mode of the user's sits above ours: leave ours disabled in place

    def _register_grad_hooks(self) -> None:
        if "grad" not in self._by_kind:
            return
        for pid, ref in list(self.state.param_refs.items()):
            param = ref()
            if param is None or not param.requires_grad:
                continue
            name = self.state.param_names.get(pid, "")
            self._heavy_handles.append(param.register_hook(self._make_grad_hook(param, name)))

    def _make_grad_hook(self, param: torch.Tensor, name: str) -> Callable[[torch.Tensor], None]:
        pref = weakref.ref(param)

        def hook(grad: torch.Tensor) -> None:
            p = pref()
            if p is None or self._busy or _FORKS[0] != self._pid:
                return None
            self._dispatch(GradContribution(param=p, name=name, grad=grad, step=self.state.step))
            return None

        return hook

    # ------------------------------------------------------------------ discovery
    def _register_model(self, module: torch.nn.Module, name: str | None = None) -> ModelInfo:
        info = self.state.models.get(id(module))
        if info is not None:
            return info
        name = name or self._name_for(module, default=type(module).__name__.lower())
        taken = {i.name for i in self.state.models.values()}
        base, n = name, 2
        while name in taken:
            name, n = f"{base}{n}", n + 1
        names = {}
        for path, sub in module.named_modules():
            names.setdefault(id(sub), f"{name}.{path}" if path else name)
        info = ModelInfo(ref=weakref.ref(module), name=name, module_names=names, cls=type(module).__name__,
                         parameters=sum(p.numel() for p in module.parameters()))
        self.state.models[id(module)] = info
        for path, param in module.named_parameters():
            self.state.param_names.setdefault(id(param), f"{name}.{path}")
            self.state.param_refs.setdefault(id(param), weakref.ref(param))
        self._root_handles[id(module)] = module.register_forward_pre_hook(
            self._root_pre, with_kwargs=True
        )
        if self._heavy and "grad" in self._by_kind:
            for path, param in module.named_parameters():
                if param.requires_grad:
                    self._heavy_handles.append(
                        param.register_hook(self._make_grad_hook(param, f"{name}.{path}"))
                    )
        return info

    def _register_optimizer(self, opt: torch.optim.Optimizer) -> OptimizerInfo:
        info = self.state.optimizers.get(id(opt))
        if info is not None:
            return info
        name = self._name_for(opt, default=type(opt).__name__.lower())
        info = OptimizerInfo(ref=weakref.ref(opt), name=name, cls=type(opt).__name__,
                             lr=opt.param_groups[0].get("lr") if opt.param_groups else None)
        self.state.optimizers[id(opt)] = info
        if self._first_optimizer is None:
            self._first_optimizer = info
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

    # ------------------------------------------------------------------ module hooks
    def _fwd_pre(self, module: torch.nn.Module, args: tuple[Any, ...]) -> None:
        if self._busy or _FORKS[0] != self._pid or threading.get_ident() != self._thread:
            return None
        if not self._stack and id(module) not in self.state.models:
            if self.discover and any(True for _ in module.parameters()):
                self._guard("discovery", self._register_model, module)
                # the per-root hook was registered after this call started: emit now
                self._guard("root", self._emit_model_input, module, args, {})
        self._stack.append(module)
        self._stack_inputs.append(args)
        return None

    def _fwd_post(self, module: torch.nn.Module, args: tuple[Any, ...], output: Any) -> None:
        if self._busy or _FORKS[0] != self._pid or threading.get_ident() != self._thread:
            return None
        if self._stack and self._stack[-1] is module:
            self._stack.pop()
            self._stack_inputs.pop()
        if "module_output" in self._by_kind:
            name = self.state.module_name(module)
            self._dispatch(ModuleOutput(module=module, name=name, inputs=args, output=output,
                                        step=self.state.step, grad_enabled=torch.is_grad_enabled()))
        return None

    def _root_pre(self, module: torch.nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        if self._busy or _FORKS[0] != self._pid or "root" in self._disabled:
            return None
        try:  # (the guard inlined: this runs on every forward)
            self._emit_model_input(module, args, kwargs)
        except Exception as exc:
            self._internal_error("root", exc)
        return None

    def _emit_model_input(self, module: torch.nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        info = self.state.models.get(id(module))
        if info is None:
            return
        if self._stack and self._stack[0] is not module:
            return  # called from inside another model: not a root call this time
        info.forward_calls += 1
        self.state.forward_calls += 1
        grad = torch.is_grad_enabled()
        if module.training:
            info.train_forward_calls += 1
        else:
            info.eval_forward_calls += 1
        self._forwards_since_tick += 1
        if self._heavy and self._forwards_since_tick > 16 and not self.schedule.sampled(self.clock):
            self._set_heavy(False)  # a long evaluation or inference loop: stop looking closely
        if not grad and not self._heavy and not self._light and self._forwards_since_tick <= EVAL_LOSS_FORWARDS:
            self._set_light(True)  # record this evaluation loop's losses (state.eval_losses)
        training = module.training
        self.state.last_forward = (info.name, training, grad)
        if grad:
            self.loaders.train_mark = self.loaders.fetches
            if training is not info.grad_training:
                if info.grad_training is not None and not self._heavy:
                    # a model trained in the other mode than before (e.g. left in eval mode after
                    # validation): look closely from the next step on
                    self.schedule.boost(self.clock, 3)
                info.grad_training = training
        elif "eval_input" in self._by_kind:
            self._dispatch(EvalInput(model=module, name=info.name, args=args, kwargs=kwargs,
                                     step=self.state.step, training=module.training,
                                     grad_enabled=grad, sampled=self._heavy))
        if (self._by_kind if self._heavy else self._by_kind_unsampled).get("model_input"):
            self._dispatch(ModelInput(model=module, name=info.name, args=args, kwargs=kwargs,
                                      step=self.state.step, training=training,
                                      grad_enabled=grad, sampled=self._heavy))

    def _set_light(self, on: bool) -> None:
        """Loss-only function mode: records evaluation losses without the heavy probes."""
        if on:
            if self._heavy or self._light or not self._active:
                return
            self._light = True
            self._push_mode()
        elif self._light:
            self._light = False
            if not self._heavy:
                self._pop_mode()

    def _on_eval_loss(self, name: str, args: tuple[Any, ...], kwargs: dict[str, Any], result: Any) -> None:
        if "targets" in self._by_kind:
            self._guard("targets", self._emit_targets, name, args, kwargs)
        if torch.is_grad_enabled() or not isinstance(result, torch.Tensor) or result.numel() != 1:
            return
        if kwargs.get("reduction") == "sum":  # per-example scale, comparable with the training loss
            inp = args[0] if args else kwargs.get("input")
            if isinstance(inp, torch.Tensor) and inp.numel():
                n = inp.shape[0] if name in ("cross_entropy", "nll_loss", "multi_margin_loss") else inp.numel()
                result = result / max(int(n), 1)
        self.state.eval_losses.record(self.state.step, result)

    def _emit_targets(self, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        inp = args[0] if args else kwargs.get("input")
        target = args[1] if len(args) > 1 else kwargs.get("target")
        if isinstance(inp, torch.Tensor) and isinstance(target, torch.Tensor):
            self._dispatch(Targets(name=name, input=inp, target=target,
                                   kwargs={k: v for k, v in kwargs.items() if k not in ("input", "target")},
                                   step=self.state.step, training=torch.is_grad_enabled()))

    def _on_prediction_op(self, name: str, args: tuple[Any, ...], result: Any) -> None:
        """Remember class indices made by argmax/max; report targets compared with them."""
        if name in PREDICTION_OPS:
            indices = result if name == "argmax" else (
                result[1] if isinstance(result, tuple) and len(result) == 2 else None)
            if isinstance(indices, torch.Tensor) and indices.dim() >= 1 and not indices.is_floating_point():
                if len(self._predictions) > 256:
                    self._predictions = {k: r for k, r in self._predictions.items() if r() is not None}
                self._predictions[id(indices)] = weakref.ref(indices)
            return
        if len(args) < 2:
            return
        for pred, target in ((args[0], args[1]), (args[1], args[0])):
            if not (isinstance(pred, torch.Tensor) and isinstance(target, torch.Tensor)):
                return
            ref = self._predictions.get(id(pred))
            if ref is not None and ref() is pred and target.numel() == pred.numel() and target.dim() >= 1:
                self._dispatch(Targets(name="compare", input=pred, target=target, kwargs={},
                                       step=self.state.step, training=torch.is_grad_enabled()))
                return

    def _current_module_name(self) -> str:
        return self.state.module_name(self._stack[-1]) if self._stack else ""

    # ------------------------------------------------------------------ ops
    def _on_op(self, name: str, func: Any, args: tuple[Any, ...], kwargs: dict[str, Any], result: Any) -> None:
        self._busy = True
        try:
            if name in LOSS_FUNCTIONS:
                self._on_loss(name, args, kwargs, result)
                if "targets" in self._by_kind:
                    self._guard("targets", self._emit_targets, name, args, kwargs)
            elif name in PREDICTION_OPS or name in COMPARE_OPS:
                if "targets" in self._by_kind:
                    self._guard("targets", self._on_prediction_op, name, args, result)
            if name in PROVENANCE_OPS and isinstance(result, torch.Tensor):
                self._label(result, name, args, kwargs)
            elif name in PASS_THROUGH_OPS and isinstance(result, torch.Tensor) and args:
                prov = self.provenance(args[0])
                if prov is not None:
                    self._prov[id(result)] = (weakref.ref(result), prov)
            checks = self._op_checks.get(name)
            if checks:
                provs = tuple(self.provenance(a) for a in args[:3])
                event = OpCall(name=name, func=func, args=args, kwargs=kwargs, result=result,
                               step=self.state.step, module=self._current_module_name(),
                               input_provenance=provs)
                self._dispatch(event, checks)
        except Exception as exc:
            self._internal_error("function-mode", exc)
            if self._mode is not None:
                self._mode.enabled = False
        finally:
            self._busy = False

    def _label(self, result: torch.Tensor, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        dim = kwargs.get("dim")
        if dim is None and len(args) > 1 and isinstance(args[1], int):
            dim = args[1]
        shape = tuple(args[0].shape) if args and isinstance(args[0], torch.Tensor) else ()
        name = _PROVENANCE_ALIASES.get(name, name)
        if name == "log":
            inner = self.provenance(args[0]) if args else None
            if inner is None or inner.op not in ("softmax", "sigmoid"):
                return
            name = "log_softmax" if inner.op == "softmax" else "logsigmoid"
            dim = inner.dim
            module = inner.module or self._current_module_name()  # where the softmax ran
        else:
            module = self._current_module_name()
        if len(self._prov) > 4096:
            self._prov = {k: v for k, v in self._prov.items() if v[0]() is not None}
        self._prov[id(result)] = (
            weakref.ref(result),
            Provenance(op=name, dim=dim, module=module, input_shape=shape),
        )

    def provenance(self, tensor: Any) -> Provenance | None:
        """How ``tensor`` was produced, if the function mode saw it being made."""
        if not isinstance(tensor, torch.Tensor):
            return None
        entry = self._prov.get(id(tensor))
        if entry is None or entry[0]() is not tensor:
            return None
        return entry[1]

    def _on_loss(self, name: str, args: tuple[Any, ...], kwargs: dict[str, Any], result: Any) -> None:
        inp = args[0] if args else kwargs.get("input")
        target = args[1] if len(args) > 1 else kwargs.get("target")
        if not isinstance(inp, torch.Tensor):
            return
        grad = torch.is_grad_enabled()
        if not grad and isinstance(result, torch.Tensor) and result.numel() == 1:
            self.state.eval_losses.record(self.state.step, result)
        event = LossCall(name=name, input=inp, target=target if isinstance(target, torch.Tensor) else None,
                         kwargs={k: v for k, v in kwargs.items() if k not in ("input", "target")},
                         result=result, step=self.state.step, provenance=self.provenance(inp),
                         site=user_site(), grad_enabled=grad)
        self._dispatch(event)

    # ------------------------------------------------------------------ backward
    def _patch_backward(self) -> None:
        original = torch.autograd.backward
        self._orig_backward = original
        observer = self

        def backward(tensors, *args, **kwargs):  # type: ignore[no-untyped-def]
            if observer._active and not observer._busy and _FORKS[0] == observer._pid \
                    and "backward" not in observer._disabled:
                try:  # (the guard inlined: this runs on every backward)
                    observer._on_backward(tensors)
                except Exception as exc:
                    observer._internal_error("backward", exc)
            return original(tensors, *args, **kwargs)

        backward.__wrapped__ = original  # type: ignore[attr-defined]
        backward.__doc__ = original.__doc__
        torch.autograd.backward = backward  # type: ignore[assignment]

    def _on_backward(self, tensors: Any) -> None:
        tensor = tensors if isinstance(tensors, torch.Tensor) else (
            tensors[0] if isinstance(tensors, (list, tuple)) and tensors else None)
        index = self.state.backward_calls
        self.state.backward_calls += 1
        if isinstance(tensor, torch.Tensor):
            scalar = tensor.numel() == 1
            finite = True
            if scalar and self._reads_loss_here(tensor):
                value = tensor.item()  # a CPU scalar: reading it costs no sync, and keeps no tensor
                finite = math.isfinite(value)
                self.state.losses.record(self.state.step, value)
            elif scalar:
                self.state.losses.record(self.state.step, tensor)  # read in batches (no sync)
                finite = False  # unknown here: an accelerator's check keeps a device-side flag
            # without an optimizer every backward is a step: the checks get them all
            by_kind = self._by_kind if self._heavy or not self.state.optimizers else self._by_kind_unsampled
            if by_kind.get("backward"):
                self._dispatch(BackwardCall(tensor=tensor, step=self.state.step, index=index,
                                            sampled=self._heavy), checks=by_kind["backward"])
            if not finite and by_kind is self._by_kind_unsampled and "loss_check" in self._by_kind:
                # unsampled: only a non-finite CPU loss (or any accelerator loss) becomes an event
                self._dispatch(BackwardCall(tensor=tensor, step=self.state.step, index=index,
                                            sampled=False), kind="loss_check")
        if not self.state.optimizers:
            self._tick()

    @staticmethod
    def _reads_loss_here(tensor: torch.Tensor) -> bool:
        """Whether the loss is read on every backward: a CPU float costs no sync (an accelerator's
        losses are read in batches, and its non-finite check keeps a device-side flag)."""
        return tensor.is_cpu and tensor.is_floating_point()

    # ------------------------------------------------------------------ optimizer
    def _step_pre(self, optimizer: torch.optim.Optimizer, args: Any, kwargs: Any) -> None:
        if not self._active or _FORKS[0] != self._pid:
            return None
        info = self.state.optimizers.get(id(optimizer))
        if info is None:
            info = self._guard("discovery", self._register_optimizer, optimizer)
            if info is None:
                return None
        if (self._by_kind if self._heavy else self._by_kind_unsampled).get("step.pre"):
            self._dispatch(StepEvent(optimizer=optimizer, optimizer_name=info.name, phase="pre",
                                     step=self.state.step, optimizer_step=info.steps + 1,
                                     sampled=self._heavy), kind="step.pre")
        return None

    def _step_post(self, optimizer: torch.optim.Optimizer, args: Any, kwargs: Any) -> None:
        if not self._active or _FORKS[0] != self._pid:
            return None
        info = self.state.optimizers.get(id(optimizer))
        if info is None:
            return None
        info.steps += 1
        info.backwards_at_post = self.state.backward_calls
        if info is self._first_optimizer and optimizer.param_groups:
            lr = optimizer.param_groups[0].get("lr")
            # the lr history keeps every change and, while constant, one value in 16 steps
            if isinstance(lr, (int, float)) and (lr != info.lr or info.steps % 16 == 1):
                self.state.lrs.record(self.state.step, float(lr))
                info.lr = float(lr)
        if (self._by_kind if self._heavy else self._by_kind_unsampled).get("step.post"):
            self._dispatch(StepEvent(optimizer=optimizer, optimizer_name=info.name, phase="post",
                                     step=self.state.step, optimizer_step=info.steps,
                                     sampled=self._heavy), kind="step.post")
        self.state.step += 1
        self._tick()
        if self.max_steps is not None and self.state.step - 1 >= self.max_steps:
            self.end_reason = "max-steps"
            raise StopTraining(self.max_steps)
        return None

    def _tick(self) -> None:
        total = self.state.losses.total
        if total - self._curve_read >= CURVE_EVERY and total - self._curve_read >= self._curve_read // 8 \
                and "curve" in self._by_kind:
            self._curve_read = total
            self._dispatch(CurveDue(step=self.state.step))
        self._forwards_since_tick = 0
        if self._light:
            self._set_light(False)
        sampled = self.schedule.sampled(self.clock)
        if sampled or self._heavy or self._mode is not None:
            self._set_heavy(sampled)
        self.state.sampled = self._heavy


class StopTraining(BaseException):
    """Raised from the optimizer hook to end a script cleanly after ``--max-steps``."""

    def __init__(self, steps: int) -> None:
        super().__init__(f"nndoctor stopped the script after {steps} optimizer steps (--max-steps)")
        self.steps = steps


def _downsample(steps: list[int], values: list[float], limit: int = 400) -> dict[str, list[Any]]:
    """At most ``limit`` points of a curve, for reports (non-finite values become None)."""
    stride = max(1, -(-len(values) // limit))
    return {"steps": steps[::stride],
            "values": [v if v == v and abs(v) != float("inf") else None for v in values[::stride]]}


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, (torch.nn.Module, torch.optim.Optimizer)):
        return [value]
    return list(value)
