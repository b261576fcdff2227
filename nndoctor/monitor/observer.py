"""The observer: installs PyTorch's global hooks, turns what it sees into events for checks.

Cheap probes are always on: a global optimizer step post hook, a thin wrapper around
``torch.autograd.backward`` (loss history, backward counting) and one forward pre-hook
per discovered root model. Heavy probes (a torch function mode that sees functional
calls such as ``F.cross_entropy``, global per-module forward hooks, parameter grad
hooks and the optimizer step pre hook) are switched on only for sampled steps (see
:class:`Schedule`).

Everything is installed in :meth:`Observer.__enter__` and removed in ``finally``. An
exception inside a check is caught, reported as an internal error and that check is
switched off; an exception in the observer's own code (every entry point PyTorch calls
into is guarded) is reported once and switches nndoctor off (:meth:`Observer._fail`).
Either way the user's training carries on, with unchanged results; the user's own
exceptions, ``KeyboardInterrupt`` and :class:`StopTraining` pass through untouched.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import threading
import time
import traceback
import weakref
from typing import Any, Callable, Iterable

import torch
import torch.nn.modules.module as module_hooks
import torch.optim.optimizer as optimizer_hooks
from torch.utils.hooks import RemovableHandle

from nndoctor.checks import Check, registered
from nndoctor.findings import Finding, InternalError, Report
from nndoctor.monitor import compat
from nndoctor.monitor.busy import Busy
from nndoctor.monitor.clipping import ClipWatch
from nndoctor.monitor.discovery import Discovery
from nndoctor.monitor.ending import run_end_checks
from nndoctor.monitor.evalrec import PendingEval, RecipeTracker, recipe_of
from nndoctor.monitor.events import (
    BackwardCall,
    Crash,
    CurveDue,
    EvalInput,
    GradContribution,
    ModelInput,
    ModuleOutput,
    OpCall,
    Provenance,
    StepEvent,
)
from nndoctor.monitor.functions import (
    _FORKS,
    COMPARE_OPS,
    LOSS_FUNCTIONS,
    PASS_THROUGH_OPS,
    PREDICTION_OPS,
    PROVENANCE_OPS,
    FunctionEvents,
    FunctionMode,
    op_name,
    user_site,
)
from nndoctor.monitor.loaders import LoaderTracker
from nndoctor.monitor.sampling import Schedule
from nndoctor.monitor.sink import FindingSink
from nndoctor.monitor.state import OptimizerInfo, RunState
from nndoctor.report.sections import Series, TrainingCurves

__all__ = ["LOSS_FUNCTIONS", "Observer", "op_name", "user_site"]

logger = logging.getLogger("nndoctor")

_DisableTorchFunction = getattr(torch._C, "DisableTorchFunction", contextlib.nullcontext)
_grad_enabled = torch.is_grad_enabled
_Tensor = torch.Tensor
_mode_on = getattr(torch._C, "_is_torch_function_mode_enabled", lambda: True)
try:
    from torch.overrides import _get_current_function_mode as _current_mode
except ImportError:  # pragma: no cover - private API moved
    def _current_mode() -> Any:
        return None

#: losses between reads of the loss history at the start (then every 1/8 of the run)
CURVE_EVERY = 25

#: root-model forwards without grad after a step whose losses are recorded as evaluation losses
EVAL_LOSS_FORWARDS = 64

#: the observer's own modules: an exception raised inside them (even through a check) is a fault of
#: the observer, which then switches off entirely (a check's own fault only switches that check off)
_OBSERVER_FILES = frozenset(
    os.path.join(os.path.dirname(os.path.abspath(__file__)), f"{name}.py")
    for name in ("observer", "busy", "functions", "discovery", "state", "history", "sampling", "loaders",
                 "compat", "sink", "events", "ending")
)

class Observer(FunctionEvents, Discovery):
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
        self._eval_op_checks: dict[str, list[Check]] = {}  # ops also watched in evaluation loops
        self._disabled: set[str] = set()
        self.internal_errors: list[InternalError] = []
        self._handles: list[RemovableHandle] = []
        self._heavy_handles: list[RemovableHandle] = []
        self._fresh_hook_dicts: list[weakref.ReferenceType[torch.Tensor]] = []
        self._root_handles: dict[int, RemovableHandle] = {}
        self._mode: FunctionMode | None = None
        self.loaders = LoaderTracker(name_for=lambda obj, default: self._name_for(obj, default, outermost=True),
                                     on_error=self._fail)
        self.state.loaders = self.loaders
        self._predictions: dict[int, weakref.ReferenceType[torch.Tensor]] = {}
        self._orig_backward: Callable[..., Any] | None = None
        self._orig_grad: Callable[..., Any] | None = None
        self._orig_tensor_backward: Callable[..., Any] | None = None
        self._clips = ClipWatch(self)  # clip_grad_norm_ / clip_grad_value_ on sampled steps
        self._in_grad = False  # inside torch.autograd.grad (see _patch_grad)
        self._in_backward = False  # inside torch.autograd.backward (see _patch_backward)
        self._busy = False  # the observer's own work is under way: its hooks pass through
        self.busy = Busy(self)  # ``with self.busy:`` sets it (the one way to, re-entrant)
        self._pid = _FORKS[0]  # fork generation of the process that made this observer
        self._thread = threading.get_ident()
        self._stack: list[torch.nn.Module] = []
        self._stack_inputs: list[tuple[Any, ...]] = []
        self._failed_op: tuple[str, Any, tuple[Any, ...], dict[str, Any]] | None = None
        self._prov: dict[int, tuple[weakref.ReferenceType[torch.Tensor], Provenance]] = {}
        self._heavy = False
        self._light = False  # loss-only function mode during an evaluation loop
        self._pending_eval = PendingEval()  # evaluation-mode losses with gradients (evalrec.py)
        self._recipes = RecipeTracker()  # hand-written evaluation losses (evalrec.py)
        self._loss_recipe: tuple[str, ...] | None = None
        self._recipe_tries = 0
        self._pre_step_always = True
        self._root_slow = False  # a check wants every root forward (unsampled model_input events)
        self._fast_backward = False  # see _refresh_fast_backward
        self._forwards_since_tick = 0
        self._curve_due: float = CURVE_EVERY  # state.losses.total at which the loss curve is read next
        self._unsampled_step_post = False  # whether a check wants unsampled post-step events
        self._first_optimizer: OptimizerInfo | None = None  # its lr is the run's lr history
        self._active = False
        self._failed = False  # the observer's own code failed: nndoctor is off (see _fail)
        self._off_due = False  # ... and its hooks are still to be removed at a safe point
        self._steps_after_failure = 0
        self._started = 0.0
        self.end_reason = "finished"
        self.end_analysis: dict[str, Any] = {}  # the end-of-run analysis: budget, time spent, what was left out
        self.crash: BaseException | None = None

    # ------------------------------------------------------------------ lifecycle
    def __enter__(self) -> Observer:
        self._started = time.perf_counter()
        try:
            self._install()
        except Exception as exc:  # nndoctor cannot start: the script runs unobserved
            self._fail("enter", exc)
            self._remove_all()
        except BaseException:
            self._remove_all()
            raise
        return self

    def __reduce__(self) -> tuple[Any, ...]:
        # a hook of ours pickled or deep-copied with a user's object (torch.nn.Module's own
        # __getstate__ leaves it out while we run; a class of the user's may not): an inert stand-in
        return (compat.InertObserver, ())

    def _install(self) -> None:
        self.checks = []
        for cls in self._check_classes:
            try:
                self.checks.append(cls(self.state))
            except Exception as exc:  # a check that cannot start: the others run
                self._internal_error(getattr(cls, "__name__", str(cls)), exc)
        for check in self.checks:
            for need in check.needs:
                # optimizer steps are dispatched per phase: a check only hears the phases it wants
                for kind in ([f"step.{p}" for p in sorted(check.step_phases)] if need == "step" else [need]):
                    self._by_kind.setdefault(kind, []).append(check)
                    if kind not in check.sampled_only and need not in check.sampled_only:
                        self._by_kind_unsampled.setdefault(kind, []).append(check)
            for name in check.ops:
                self._op_checks.setdefault(name, []).append(check)
            for name in check.eval_ops:
                self._eval_op_checks.setdefault(name, []).append(check)
        watched = set(self._op_checks) | PROVENANCE_OPS | PASS_THROUGH_OPS
        if "loss" in self._by_kind or "targets" in self._by_kind or self._op_checks:
            watched |= LOSS_FUNCTIONS
        if "targets" in self._by_kind:
            watched |= PREDICTION_OPS | COMPARE_OPS
        self._watched_ops = frozenset(watched)
        compat.install(self)
        for i, model in enumerate(self._given_models):
            self._register_model(model, name=self._name_for(model, default="model" if i == 0 else f"model{i + 1}"))
        for opt in self._given_optimizers:
            self._register_optimizer(opt)
        # the pre-step hook is only needed on sampled steps unless a check wants unsampled
        # pre-step events (optimizers first seen on an unsampled step are registered post-step)
        self._pre_step_always = "step.pre" in self._by_kind_unsampled
        self._root_slow = bool(self._by_kind_unsampled.get("model_input"))
        self._unsampled_step_post = bool(self._by_kind_unsampled.get("step.post"))
        if "curve" not in self._by_kind:
            self._curve_due = float("inf")  # no check reads the loss curve
        self._refresh_fast_backward()
        if self._pre_step_always:
            self._handles.append(optimizer_hooks.register_optimizer_step_pre_hook(self._step_pre))
        self._handles.append(optimizer_hooks.register_optimizer_step_post_hook(self._step_post))
        self._patch_backward()
        self._clips.install()
        if "targets" in self._by_kind:
            self.loaders.install()
        self._active = True
        self._set_heavy(True)

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            if exc is not None and self.end_reason == "finished":
                if isinstance(exc, KeyboardInterrupt):
                    self.end_reason = "interrupted"
                elif isinstance(exc, Exception):
                    self.on_crash(exc)
        finally:
            self._remove_all()
            if not self._failed:  # (after a fault of ours the end-of-run checks would judge half a run)
                try:  # (the end-of-run analysis, within its budget: nndoctor/monitor/ending.py)
                    self._pending_eval.resolve(self.state.eval_losses.record)
                    self.end_analysis = run_end_checks(
                        self._by_kind.get("end", ()), self.state.step, self.end_reason,
                        time.perf_counter() - self._started,
                        lambda event, check: self._dispatch(event, checks=(check,)))
                except Exception as err:
                    self._fail("end", err)

    def _remove_all(self, *, keep_step_limit: bool = False) -> None:
        """Remove every hook and patch. Self-contained (it calls none of the helpers that install
        them, which may be what failed), each part on its own: one failing leaves the others.
        ``keep_step_limit``: after a fault, the step hook and the backward wrapper stay to end the
        run at ``max_steps`` (they do nothing else now)."""
        self._active = False
        self._off_due = False
        parts: list[Callable[[], None]] = [self._remove_heavy, self._remove_roots, self.loaders.remove]
        if not keep_step_limit:
            parts += [self._remove_step_hooks, self._restore_backward, self._clips.remove]
        for part in parts:
            try:
                part()
            except Exception as exc:
                self._fail("remove", exc)
        if not keep_step_limit:
            compat.uninstall(self)
        self._predictions.clear()
        self._prov.clear()
        self._stack.clear()
        self._stack_inputs.clear()

    def _remove_heavy(self) -> None:
        self._heavy = self._light = False
        handles, self._heavy_handles = self._heavy_handles, []
        for handle in handles:
            handle.remove()
        fresh, self._fresh_hook_dicts = self._fresh_hook_dicts, []
        for ref in fresh:  # (as _drop_empty_hook_dicts)
            param = ref()
            if param is not None and param._backward_hooks is not None and not param._backward_hooks:
                param._backward_hooks = None
        mode = self._mode
        if mode is not None:
            mode.enabled = False
            if _current_mode() is mode:
                mode.__exit__(None, None, None)
                self._mode = None

    def _remove_roots(self) -> None:
        handles, self._root_handles = self._root_handles, {}
        for handle in handles.values():
            handle.remove()

    def _remove_step_hooks(self) -> None:
        handles, self._handles = self._handles, []
        for handle in handles:
            handle.remove()

    def _restore_backward(self) -> None:
        if self._orig_backward is not None:
            torch.autograd.backward = self._orig_backward  # type: ignore[assignment]
            self._orig_backward = None
        if self._orig_grad is not None:
            torch.autograd.grad = self._orig_grad  # type: ignore[assignment]
            self._orig_grad = None
        if self._orig_tensor_backward is not None:
            torch.Tensor.backward = self._orig_tensor_backward  # type: ignore[method-assign]
            self._orig_tensor_backward = None

    def on_crash(self, exc: BaseException) -> None:
        """Explain a crash of the user's code (called by the runner or ``__exit__``)."""
        self.end_reason = "crash"
        self.crash = exc
        if self._failed:
            return
        try:
            op = None
            if self._failed_op is not None:
                name, func, args, kwargs = self._failed_op
                op = OpCall(name=name, func=func, args=args, kwargs=kwargs, result=None,
                            step=self.state.step, module=self._current_module_name())
            inputs = self._stack_inputs[-1] if self._stack_inputs else ()
            names = tuple(self.state.module_name(m) for m in self._stack)
            self._dispatch(Crash(exc=exc, step=self.state.step, module_stack=names,
                                 module_inputs=inputs, op=op))
        except Exception as err:
            self._fail("crash", err)

    def report(self) -> Report:
        """The findings so far, with the facts of the run (a fault of ours while reading them is
        reported like any other: the report then holds what could be read)."""
        try:
            facts = self._facts()
        except Exception as exc:
            self._fail("report", exc)
            facts = {"steps": max(self.state.step - 1, 0), "backward_calls": self.state.backward_calls,
                     "forward_calls": self.state.forward_calls, "models": [], "optimizers": [],
                     "duration_s": 0.0, "end": self.end_reason, "curves": {}}
        return Report(findings=self.sink.findings(), facts=facts,
                      internal_errors=list(self.internal_errors))

    def _facts(self) -> dict[str, Any]:
        self.state.losses.flush()
        model_names = {info.name for info in self.state.models.values()}

        def models_of(optimizer: torch.optim.Optimizer | None) -> list[str]:
            """The models whose parameters ``optimizer`` updates (evidence for linking findings)."""
            if optimizer is None:
                return []
            heads = {self.state.param_names.get(id(p), "").partition(".")[0]
                     for group in optimizer.param_groups for p in group["params"]}
            return sorted(heads & model_names)

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
                        and info.optimizer.param_groups else info.lr),
                 "models": models_of(info.optimizer)}
                for info in self.state.optimizers.values()
            ],
            "duration_s": round(time.perf_counter() - self._started, 3) if self._started else 0.0,
            "end": self.end_reason,
            "curves": TrainingCurves({h.name: Series(**_downsample(*h.series())) for h in (
                self.state.losses, self.state.eval_losses, self.state.lrs) if len(h)}).to_dict(),
        }
        for key in ("nndoctor.grad_norms", "nndoctor.activation_health"):  # typed sections of the checks
            section = self.state.extra.get(key)
            data = section.to_dict() if section is not None else None
            if data:
                facts[section.key] = data
        if self.end_analysis:
            facts["end_analysis"] = dict(self.end_analysis)
        if "distributed" in self.state.extra:  # the rank's fingerprints (nndoctor/distributed)
            facts["distributed"] = self.state.extra["distributed"]
        return facts

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
        with self.busy:
            # checks run without autograd on sampled steps and at the end, with one grad-mode switch
            # for all of them; unsampled events (the always-on path) skip the switch: checks only
            # read there, and detach or use no_grad themselves before computing on user tensors
            grad_was = torch.is_grad_enabled()
            if grad_was and (heavy or event.kind in ("end", "crash")):
                torch._C._set_grad_enabled(False)
            disabled = self._disabled
            # the checks' own tensor reads skip the function mode (a Python call per op otherwise)
            quiet = _DisableTorchFunction() if self._mode is not None and _mode_on() else None
            if quiet is not None:
                quiet.__enter__()
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
                        if _raised_in_observer(exc):
                            self._fail(f"{check.name()} (in the observer)", exc)
                            break
                        self._internal_error(check.name(), exc)
            finally:
                if quiet is not None:
                    quiet.__exit__(None, None, None)
                if grad_was:
                    torch._C._set_grad_enabled(True)

    def _internal_error(self, probe: str, exc: BaseException) -> None:
        self._disabled.add(probe)
        self._refresh_fast_backward()
        detail = "".join(traceback.format_exception_only(type(exc), exc)).strip()
        logger.debug("nndoctor probe %s failed", probe, exc_info=exc)
        self.internal_errors.append(InternalError(probe=probe, error=detail, step=self.state.step))

    def _guard(self, probe: str, fn: Callable[..., Any], *args: Any) -> Any:
        try:
            return fn(*args)
        except Exception as exc:
            self._fail(probe, exc)
            return None

    def _fail(self, probe: str, exc: BaseException) -> None:
        """A fault in nndoctor's own code: report it once and switch nndoctor off; the user's
        training carries on, unchanged. Every hook compares the process's fork generation with
        ``_pid`` first: -1 matches none, so from here each one returns at its first test (no extra
        test on the hot path). The hooks themselves are removed at the next point where that is
        safe (:meth:`_switch_off`; not while torch iterates over them), or at the end."""
        if self._failed:
            return
        self._failed = True
        self._pid = -1
        self._active = False
        self._off_due = True
        if self._mode is not None:
            self._mode.enabled = False
        try:
            detail = "".join(traceback.format_exception_only(type(exc), exc)).strip()
            logger.debug("nndoctor failed in %s and switched itself off", probe, exc_info=exc)
        except Exception:  # an exception that cannot even be printed
            detail = type(exc).__name__
        self.internal_errors.append(InternalError(probe=f"observer: {probe}", error=detail,
                                                  step=self.state.step))

    def _switch_off(self) -> None:
        """After :meth:`_fail`: remove the hooks (called where that is safe: from the user's code
        on the observer's thread, not from inside a check or one of torch's loops over hooks)."""
        if self._off_due and not self._busy and threading.get_ident() == self._thread:
            self._remove_all(keep_step_limit=self.max_steps is not None)

    def _count_after_failure(self, optimizer_step: bool) -> None:
        """After :meth:`_fail` only ``max_steps`` is kept: the user's steps (optimizer steps, or the
        backward calls of a script without optimizer) are still counted, and the run ended there."""
        if self.max_steps is None:
            return
        state = self.state
        if optimizer_step:
            if not state.optimizers and not self._steps_after_failure:
                state.step = 1  # (the backward calls before counted as steps: see _register_optimizer)
            self._steps_after_failure += 1
            clock = state.step
            state.step = clock + 1
            if clock >= self.max_steps:
                self.end_reason = "max-steps"
                raise StopTraining(self.max_steps)
        elif not state.optimizers and not self._steps_after_failure:
            if state.backward_calls >= self.max_steps:
                self.end_reason = "max-steps"
                raise StopTraining(self.max_steps)
            state.backward_calls += 1
            state.step = state.backward_calls + 1

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
            if not self._pre_step_always:
                self._heavy_handles.append(optimizer_hooks.register_optimizer_step_pre_hook(self._step_pre))
            self._register_grad_hooks()
            self._push_mode()
        else:
            self._heavy = False
            self._light = False
            for handle in self._heavy_handles:
                handle.remove()
            self._heavy_handles.clear()
            if self._fresh_hook_dicts:
                self._drop_empty_hook_dicts()
            self._stack.clear()
            self._stack_inputs.clear()
            self._pop_mode()
            self._prov.clear()

    def _push_mode(self) -> None:
        if self._mode is not None:
            self._mode.enabled = True
            return
        mode = FunctionMode(self)
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
            self._hook_param(param, self.state.param_names.get(pid, ""))

    def _hook_param(self, param: torch.Tensor, name: str) -> None:
        """A grad hook for a sampled step on ``param``, removed with the heavy probes."""
        # torch keeps a parameter's hook dict once made, and calls into Python (GIL, a tensor
        # wrapper) for it on every backward even when empty: remember the dicts made here
        fresh = getattr(param, "_backward_hooks", 0) is None and param.grad_fn is None
        self._heavy_handles.append(param.register_hook(self._make_grad_hook(param, name)))
        if fresh:
            self._fresh_hook_dicts.append(weakref.ref(param))

    def _drop_empty_hook_dicts(self) -> None:
        """Give back the hook dicts made by :meth:`_hook_param` that nobody else uses (the
        user's own hooks, registered in the meantime, keep theirs)."""
        for ref in self._fresh_hook_dicts:
            param = ref()
            if param is None:
                continue
            try:
                hooks = param._backward_hooks
                if hooks is not None and len(hooks) == 0:
                    param._backward_hooks = None
            except Exception as exc:  # an exotic tensor subclass: the dict stays, nothing else
                logger.debug("nndoctor could not drop an empty hook dict", exc_info=exc)
        self._fresh_hook_dicts.clear()

    def _make_grad_hook(self, param: torch.Tensor, name: str) -> Callable[[torch.Tensor], None]:
        pref = weakref.ref(param)

        def hook(grad: torch.Tensor) -> None:
            p = pref()
            # (a custom autograd.Function whose backward returns None hands its inputs' hooks None)
            if p is None or grad is None or self._busy or _FORKS[0] != self._pid:
                return None
            try:
                self._dispatch(GradContribution(param=p, name=name, grad=grad, step=self.state.step))
            except Exception as exc:
                self._fail("grad hook", exc)
            return None

        hook.__torch_unserializable__ = True  # type: ignore[attr-defined]  # (no warning when pickled)
        return hook

    # ------------------------------------------------------------------ module hooks
    def _fwd_pre(self, module: torch.nn.Module, args: tuple[Any, ...]) -> None:
        if self._busy or _FORKS[0] != self._pid or threading.get_ident() != self._thread:
            if self._off_due:
                self._switch_off()
            return None
        try:
            if not self._stack and id(module) not in self.state.models:
                # (a TorchScript copy is the user's export, not the model being trained)
                if self.discover and any(True for _ in module.parameters()) \
                        and not isinstance(module, torch.jit.ScriptModule):
                    self._register_model(module)
                    # the per-root hook was registered after this call started: emit now
                    self._emit_model_input(module, args, {})
            self._stack.append(module)
            self._stack_inputs.append(args)
        except Exception as exc:
            self._fail("module forward pre-hook", exc)
        return None

    def _fwd_post(self, module: torch.nn.Module, args: tuple[Any, ...], output: Any) -> None:
        if self._busy or _FORKS[0] != self._pid or threading.get_ident() != self._thread:
            return None
        try:
            if self._stack and self._stack[-1] is module:
                self._stack.pop()
                self._stack_inputs.pop()
            if "module_output" in self._by_kind:
                name = self.state.module_name(module)
                self._dispatch(ModuleOutput(module=module, name=name, inputs=args, output=output,
                                            step=self.state.step, grad_enabled=torch.is_grad_enabled()))
        except Exception as exc:
            self._fail("module forward hook", exc)
        return None

    def _root_pre(self, module: torch.nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any] | None = None) -> None:
        # the common case, kept short (it runs on every forward): a training forward with gradient
        # between samples, in the mode the model trained in before; all else: _emit_model_input
        try:  # (the guard inlined: this runs on every forward; a try costs nothing until it catches)
            if not (self._heavy or self._light or self._busy or self._root_slow) and self._mode is None \
                    and _grad_enabled():
                state = self.state
                info = state.models.get(id(module))
                if info is not None and module.training is True and info.grad_training is True \
                        and _FORKS[0] == self._pid:
                    info.train_forward_calls += 1
                    state.forward_calls += 1
                    self._forwards_since_tick += 1
                    state.last_forward = info.train_key
                    loaders = self.loaders
                    loaders.train_mark = loaders.fetches
                    return None
            if self._busy or _FORKS[0] != self._pid:
                if self._off_due:
                    self._switch_off()  # nndoctor failed: take the hooks off now that it is safe
                return None
            # (no kwargs: a ScriptModule, which keeps no with_kwargs flag for a Python hook)
            self._emit_model_input(module, args, {} if kwargs is None else kwargs)
        except Exception as exc:
            self._fail("root forward pre-hook", exc)
            self._switch_off()
        return None

    def _emit_model_input(self, module: torch.nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        # runs on every forward of a root model: locals instead of repeated attribute look-ups
        state = self.state
        info = state.models.get(id(module))
        if info is None:
            return
        if self._stack and self._stack[0] is not module:
            return  # called from inside another model: not a root call this time
        state.forward_calls += 1
        grad = torch.is_grad_enabled()
        training = module.training
        if training:
            info.train_forward_calls += 1
        else:
            info.eval_forward_calls += 1
        forwards = self._forwards_since_tick = self._forwards_since_tick + 1
        if forwards > 16 and (self._heavy or grad):
            sampled = self.schedule.sampled(self.clock)
            if self._heavy and not (grad and sampled):
                # a long evaluation or inference loop, also one at the start of a sampled step (an
                # evaluation every N steps meets a schedule of round numbers): stop looking closely
                self._set_heavy(False)
            elif grad and sampled and not self._heavy and self._active:
                # training resumes after such a loop on a sampled step: look closely again (the
                # global pre-hook, installed now, missed this root: it opens the module stack here)
                self._set_heavy(True)
                self._stack.append(module)
                self._stack_inputs.append(args)
        elif self._mode is not None and not self._heavy and not self._light:
            self._pop_mode()  # (disabled by a tick inside a torch function: a backward without optimizer)
        if not self._heavy and not self._light and forwards <= EVAL_LOSS_FORWARDS and (
                not grad or (not training and self._pending_eval.watching(info.name))):
            self._set_light(True)  # record this evaluation loop's losses (state.eval_losses)
        elif self._light and forwards > EVAL_LOSS_FORWARDS:
            self._set_light(False)  # ... its first EVAL_LOSS_FORWARDS (a Python call per torch call otherwise)
        state.last_forward = (info.name, training, grad)
        heavy = self._heavy
        if grad:
            self.loaders.train_mark = self.loaders.fetches
            if training is not info.grad_training:
                if info.grad_training is not None and not heavy:
                    # a model trained in the other mode than before (e.g. left in eval mode after
                    # validation): look closely from the next step on
                    self.schedule.boost(self.clock, 3)
                info.grad_training = training
        elif "eval_input" in self._by_kind:
            self._dispatch(EvalInput(model=module, name=info.name, args=args, kwargs=kwargs,
                                     step=state.step, training=training,
                                     grad_enabled=grad, sampled=heavy))
        if (self._by_kind if heavy else self._by_kind_unsampled).get("model_input"):
            self._dispatch(ModelInput(model=module, name=info.name, args=args, kwargs=kwargs,
                                      step=state.step, training=training,
                                      grad_enabled=grad, sampled=heavy))

    # ------------------------------------------------------------------ backward
    def _patch_backward(self) -> None:
        original = torch.autograd.backward
        self._orig_backward = original
        observer = self

        def backward(tensors, *args, **kwargs):  # type: ignore[no-untyped-def]
            if observer._in_backward:  # (a mode pushed by this call's tick hands it back once more)
                return original(tensors, *args, **kwargs)
            if observer._active and not observer._busy and _FORKS[0] == observer._pid:
                try:  # (the guard inlined: this runs on every backward)
                    # the common case, kept short: a finite CPU loss between samples (all else,
                    # a non-finite loss included: _on_backward)
                    if observer._fast_backward and not observer._heavy and type(tensors) is _Tensor \
                            and tensors.is_cpu and tensors.numel() == 1 \
                            and type(value := tensors.item()) is float and value - value == 0.0:
                        state = observer.state
                        state.backward_calls += 1
                        state.losses.record_float(state.step, value)
                    else:
                        observer._on_backward(tensors)
                except Exception as exc:
                    observer._fail("backward", exc)
                    observer._switch_off()
            elif observer._failed:  # nndoctor failed: take the hooks off, keep only max_steps
                observer._switch_off()
                observer._count_after_failure(False)
            observer._in_backward = True
            try:
                return original(tensors, *args, **kwargs)
            finally:
                observer._in_backward = False

        backward.__wrapped__ = original  # type: ignore[attr-defined]
        backward.__doc__ = original.__doc__
        torch.autograd.backward = backward  # type: ignore[assignment]
        self._patch_tensor_backward()
        self._patch_grad()

    def _patch_tensor_backward(self) -> None:
        """``loss.backward()`` of a script without optimizer (nor model) ticks inside the function
        mode, which cannot be popped there: it would stay on the stack, disabled, a Python call on
        every torch call of the run. Back from ``Tensor.backward`` the mode is on top: popped here."""
        original = torch.Tensor.backward
        self._orig_tensor_backward = original
        observer = self

        @functools.wraps(original)
        def backward(tensor, *args, **kwargs):  # type: ignore[no-untyped-def]
            result = original(tensor, *args, **kwargs)
            if observer._mode is not None and not (observer._heavy or observer._light or observer._busy) \
                    and _FORKS[0] == observer._pid:
                try:
                    observer._pop_mode()
                except Exception as exc:
                    observer._fail("Tensor.backward", exc)
            return result

        torch.Tensor.backward = backward  # type: ignore[method-assign]

    def _patch_grad(self) -> None:
        """``torch.autograd.grad(loss, params)`` of a scalar loss in a script without optimizer is a
        step of a hand-written update (``p -= lr * g``): counted like a backward (``--max-steps``, the
        step of findings, the loss history). With an optimizer (gradient penalties, MAML inner loops)
        the optimizer counts the steps and this call is left alone."""
        original = torch.autograd.grad
        self._orig_grad = original
        observer = self

        def grad(outputs, *args, **kwargs):  # type: ignore[no-untyped-def]
            # (a torch function mode hands the call back to this wrapper once more: counted once)
            if observer._active and not observer._busy and not observer._in_grad \
                    and _FORKS[0] == observer._pid and not observer.state.optimizers \
                    and not kwargs.get("create_graph") and kwargs.get("grad_outputs") is None and len(args) < 2:
                try:
                    loss = outputs[0] if isinstance(outputs, (list, tuple)) and len(outputs) == 1 else outputs
                    if isinstance(loss, torch.Tensor) and loss.numel() == 1 and loss.requires_grad:
                        observer._on_backward(loss)
                except Exception as exc:
                    observer._fail("autograd.grad", exc)
                    observer._switch_off()
            if observer._in_grad:
                return original(outputs, *args, **kwargs)
            observer._in_grad = True
            try:
                return original(outputs, *args, **kwargs)
            finally:
                observer._in_grad = False

        grad.__wrapped__ = original  # type: ignore[attr-defined]
        grad.__doc__ = original.__doc__
        torch.autograd.grad = grad  # type: ignore[assignment]

    def _on_backward(self, tensors: Any) -> None:
        # runs on every backward: locals instead of repeated attribute look-ups
        state = self.state
        tensor = tensors if isinstance(tensors, torch.Tensor) else (
            tensors[0] if isinstance(tensors, (list, tuple)) and tensors else None)
        if self._heavy and self._loss_recipe is None and self._recipe_tries < 8 and isinstance(tensor, torch.Tensor):
            self._recipe_tries += 1  # a hand-written training loss: its recipe finds it in evaluation loops
            self._loss_recipe = recipe_of(tensor) if tensor.numel() == 1 else None
        index = state.backward_calls
        if not state.optimizers:
            # no optimizer (yet): every backward is a step (a hand-written update follows it)
            if self.max_steps is not None and index >= self.max_steps:
                self.end_reason = "max-steps"
                raise StopTraining(self.max_steps)
            state.step = index + 1
        state.backward_calls = index + 1
        if isinstance(tensor, torch.Tensor):
            # without an optimizer every backward is a step: the checks get them all
            unsampled = not self._heavy and bool(state.optimizers)
            finite = True
            if tensor.numel() == 1:
                if self._reads_loss_here(tensor):
                    # a CPU scalar: reading it costs no sync, and keeps no tensor
                    value = tensor.item()
                    finite = value - value == 0.0  # (math.isfinite without the call)
                    state.losses.record_float(state.step, value)
                else:
                    state.losses.record(state.step, tensor)  # read in batches (no sync)
                    finite = False  # unknown here: an accelerator's check keeps a device-side flag
            by_kind = self._by_kind_unsampled if unsampled else self._by_kind
            if by_kind.get("backward"):
                self._dispatch(BackwardCall(tensor=tensor, step=state.step, index=index,
                                            sampled=self._heavy), checks=by_kind["backward"])
            if not finite and unsampled and "loss_check" in self._by_kind:
                # unsampled: only a non-finite CPU loss (or any accelerator loss) becomes an event
                self._dispatch(BackwardCall(tensor=tensor, step=state.step, index=index,
                                            sampled=False), kind="loss_check")
        if not state.optimizers:
            state.step = index + 2  # the step in progress (until an optimizer steps: _register_optimizer)
            self._tick()

    def _refresh_fast_backward(self) -> None:
        """Whether the backward wrapper may take its short path: the run has an optimizer (else
        every backward is a step), no check wants unsampled backward events, the probe is on and
        CPU losses are read on every backward (see :meth:`_reads_loss_here`)."""
        self._fast_backward = (bool(self.state.optimizers) and "backward" not in self._disabled
                               and not self._by_kind_unsampled.get("backward")
                               and type(self)._reads_loss_here is Observer._reads_loss_here)

    @staticmethod
    def _reads_loss_here(tensor: torch.Tensor) -> bool:
        """Whether the loss is read on every backward: a CPU float costs no sync (an accelerator's
        losses are read in batches, and its non-finite check keeps a device-side flag)."""
        return tensor.is_cpu and tensor.is_floating_point()

    # ------------------------------------------------------------------ optimizer
    def _step_pre(self, optimizer: torch.optim.Optimizer, args: Any, kwargs: Any) -> None:
        if not self._active or _FORKS[0] != self._pid:
            return None
        try:
            info = self.state.optimizers.get(id(optimizer))
            if info is None or info.ref() is not optimizer:  # (new, or a new one at a freed one's id)
                info = self._register_optimizer(optimizer)
            if (self._by_kind if self._heavy else self._by_kind_unsampled).get("step.pre"):
                self._dispatch(StepEvent(optimizer=optimizer, optimizer_name=info.name, phase="pre",
                                         step=self.state.step, optimizer_step=info.steps + 1,
                                         sampled=self._heavy), kind="step.pre")
            if self._mode is not None and not self._light:
                self._pop_mode()  # the optimizer's own arithmetic is nothing to watch; back at the tick
        except Exception as exc:
            self._fail("optimizer step pre-hook", exc)
        return None

    def _step_post(self, optimizer: torch.optim.Optimizer, args: Any, kwargs: Any) -> None:
        if not self._active or _FORKS[0] != self._pid:
            if self._failed:
                self._count_after_failure(True)
            return None
        state = self.state
        clock = state.step
        try:  # (the guard inlined: this runs on every step; a try costs nothing until it catches)
            info = state.optimizers.get(id(optimizer))
            if info is None or info.ref() is not optimizer:
                # first seen here: it stepped on an unsampled step (no pre-step hook then); look
                # closely at its next steps
                info = self._register_optimizer(optimizer)
                clock = state.step  # (the first optimizer's registration may recount the steps)
                self.schedule.boost(self.clock, 3)
            steps = info.steps = info.steps + 1
            info.backwards_at_post = state.backward_calls
            info.last_step = clock
            if info is self._first_optimizer:
                groups = optimizer.param_groups
                lr = groups[0].get("lr") if groups else None
                # the lr history keeps every change and, while constant, one value in 16 steps
                if (lr != info.lr or steps % 16 == 1) and isinstance(lr, (int, float)):
                    state.lrs.record_float(state.step, float(lr))
                    info.lr = float(lr)
            if self._pending_eval.items:  # every backward of this step is done: evalrec.PendingEval
                self._pending_eval.resolve(state.eval_losses.record)
            if self._heavy or self._unsampled_step_post:
                self._dispatch(StepEvent(optimizer=optimizer, optimizer_name=info.name, phase="post",
                                         step=state.step, optimizer_step=steps,
                                         sampled=self._heavy), kind="step.post")
            state.step = clock + 1
            schedule = self.schedule  # (Schedule.sampled, inlined: this runs on every step)
            sampled = clock < schedule.dense or clock % schedule.period == 0 or clock <= schedule.boosted_until
            if sampled or self._heavy or self._light or self._mode is not None or state.losses.total >= self._curve_due:
                self._tick(sampled)
            else:  # (the tick of an unsampled step with nothing due)
                self._forwards_since_tick = 0
                state.sampled = False
        except Exception as exc:
            self._fail("optimizer step hook", exc)
            state.step = clock + 1  # (the step happened, whatever failed here)
        if self.max_steps is not None and clock >= self.max_steps:
            self.end_reason = "max-steps"
            raise StopTraining(self.max_steps)
        return None

    def _tick(self, sampled: bool | None = None) -> None:
        """End of a step: read the loss curve when due, switch the heavy probes for the next step
        (``sampled``: whether it is sampled, if the caller knows)."""
        state = self.state
        total = state.losses.total
        if total >= self._curve_due:
            # read the curve every CURVE_EVERY losses at first, then every 1/8 of the run
            self._curve_due = total + max(CURVE_EVERY, total // 8)
            self._dispatch(CurveDue(step=state.step))
            sampled = None  # a check may have boosted the schedule: ask it again
        self._forwards_since_tick = 0
        if self._light:
            self._set_light(False)
        if sampled is None:
            sampled = self.schedule.sampled(self.clock)
        if sampled and not self._heavy:
            # a sampled step follows unsampled ones: the run so far sets how rare the next ones are
            self.schedule.on_sample(self.clock, self.sink.alarms)
        if sampled or self._heavy or self._mode is not None:
            self._set_heavy(sampled)
            if self._heavy and (self._mode is None or not self._mode.enabled):
                self._push_mode()  # (popped, or disabled under a mode of the user's, for the step)
        state.sampled = self._heavy


class StopTraining(BaseException):
    """Raised from the optimizer hook to end a script cleanly after ``--max-steps``."""

    def __init__(self, steps: int) -> None:
        super().__init__(f"nndoctor stopped the script after {steps} training steps (--max-steps)")
        self.steps = steps


def _raised_in_observer(exc: BaseException) -> bool:
    """Whether ``exc`` was raised inside the observer's own modules (its innermost frame)."""
    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    return tb is not None and tb.tb_frame.f_code.co_filename in _OBSERVER_FILES


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
