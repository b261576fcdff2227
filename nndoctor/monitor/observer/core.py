"""The :class:`Observer`: its state, and installing and removing everything it puts on torch
(each removal part on its own, so one failing leaves the others)."""

from __future__ import annotations

import threading
import time
import weakref
from typing import Any, Callable, Iterable

import torch
import torch.optim.optimizer as optimizer_hooks
from torch.utils.hooks import RemovableHandle

from nndoctor.checks import Check, registered
from nndoctor.findings import Finding, InternalError
from nndoctor.monitor import compat, metric_calls
from nndoctor.monitor.busy import Busy
from nndoctor.monitor.clipping import ClipWatch
from nndoctor.monitor.discovery import Discovery
from nndoctor.monitor.ending import run_end_checks
from nndoctor.monitor.evalrec import PendingEval, RecipeTracker
from nndoctor.monitor.events import Provenance
from nndoctor.monitor.functions import (
    _FORKS,
    COMPARE_OPS,
    LOSS_FUNCTIONS,
    PASS_THROUGH_OPS,
    PREDICTION_OPS,
    PROVENANCE_OPS,
    FunctionEvents,
    FunctionMode,
)
from nndoctor.monitor.loaders import LoaderTracker
from nndoctor.monitor.observer.backward import BackwardHooks
from nndoctor.monitor.observer.dispatch import Dispatch
from nndoctor.monitor.observer.forward import ForwardHooks
from nndoctor.monitor.observer.loads import LoadHooks
from nndoctor.monitor.observer.probes import HeavyProbes
from nndoctor.monitor.observer.report import Reporting
from nndoctor.monitor.observer.routes import Routes
from nndoctor.monitor.observer.steps import CURVE_EVERY, StepHooks
from nndoctor.monitor.outside import OutsideEval
from nndoctor.monitor.residuals import ResidualEval
from nndoctor.monitor.sampling import Schedule
from nndoctor.monitor.sink import FindingSink
from nndoctor.monitor.state import OptimizerInfo, RunState

__all__ = ["Observer"]


class Observer(ForwardHooks, BackwardHooks, StepHooks, HeavyProbes, Dispatch, Reporting,
               FunctionEvents, Discovery, LoadHooks, Routes):
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
        self._load_handles: list[RemovableHandle] = []  # load_state_dict hooks of root models (loads.py)
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
        self._prep_ops = 0  # watched torch calls before any model ran (functions.PREP_OPS)
        self._prep_paused = False  # the function mode stepped aside for a long data preparation
        self._prov: dict[int, tuple[weakref.ReferenceType[torch.Tensor], Provenance]] = {}
        self._heavy = False
        self._light = False  # loss-only function mode during an evaluation loop
        self._pending_eval = PendingEval()  # evaluation-mode losses with gradients (evalrec.py)
        self._recipes = RecipeTracker()  # hand-written evaluation losses (evalrec.py)
        self._loss_recipe: tuple[str, ...] | None = None
        self._residuals = ResidualEval()  # held-out residuals of a regression (residuals.py)
        self._outside = OutsideEval(self._residuals)  # ... compared outside torch (outside.py)
        self._metrics_patched = False  # sklearn.metrics wrapped (metric_calls.py)
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
        self._build_routes()  # (routes.py: who hears what, retired checks, spread looks)
        watched = set(self._all_ops) | PROVENANCE_OPS | PASS_THROUGH_OPS
        if "loss" in self._by_kind or "targets" in self._by_kind or self._all_ops:
            watched |= LOSS_FUNCTIONS
        if "targets" in self._by_kind:
            watched |= PREDICTION_OPS | COMPARE_OPS
        self._watched_ops = frozenset(watched)
        compat.install(self)
        if not self._metrics_patched:  # scikit-learn's regression metrics (metric_calls.py)
            metric_calls.install()
            self._metrics_patched = True
        for i, model in enumerate(self._given_models):
            self._register_model(model, name=self._name_for(model, default="model" if i == 0 else f"model{i + 1}"))
        for opt in self._given_optimizers:
            self._register_optimizer(opt)
        # the pre-step hook is only needed on sampled steps unless a check wants unsampled
        # pre-step events (optimizers first seen on an unsampled step are registered post-step)
        self._pre_step_always = "step.pre" in self._all_unsampled  # (a sleeping check's too: it may wake)
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
                    self._pending_eval.resolve(self.state.record_eval)
                    self._residuals.flush(self.state.record_eval)
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
        if self._metrics_patched:
            self._metrics_patched = False
            try:
                metric_calls.uninstall()
            except Exception as exc:
                self._fail("remove", exc)
        self._predictions.clear()
        self._prov.clear()
        self._stack.clear()
        self._stack_inputs.clear()

    def _remove_roots(self) -> None:
        handles, self._root_handles = self._root_handles, {}
        for handle in handles.values():
            handle.remove()
        self._remove_load_hooks()

    def _remove_step_hooks(self) -> None:
        handles, self._handles = self._handles, []
        for handle in handles:
            handle.remove()


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, (torch.nn.Module, torch.optim.Optimizer)):
        return [value]
    return list(value)
