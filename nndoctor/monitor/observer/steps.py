"""The optimizer step hooks and step bookkeeping: the step clock, the lr history, ``max_steps``
(:class:`StopTraining`) and the end of each step (the loss curve when due, the next step's
sampling) (mixed into :class:`~nndoctor.monitor.observer.Observer`)."""

from __future__ import annotations

import functools
from typing import Any, Callable

import torch

from nndoctor.monitor.events import CurveDue, StepEvent
from nndoctor.monitor.functions import _FORKS

__all__ = ["CURVE_EARLY", "CURVE_EVERY", "CURVE_QUIET_SHARE", "CURVE_SHARE", "StepHooks", "StopTraining",
           "next_curve_read"]

#: losses between reads of the loss history at the start ...
CURVE_EVERY = 25
#: ... up to this many losses (the reads that judge short runs), then every 1/CURVE_SHARE of the run
CURVE_EARLY = 200
CURVE_SHARE = 4
#: ... or, while nothing was found (no warning or error so far), every 1/CURVE_QUIET_SHARE of it
CURVE_QUIET_SHARE = 2


def next_curve_read(total: int, quiet: bool = False) -> int:
    """The loss count at which the loss curve is read next, after a read at ``total`` losses:
    every CURVE_EVERY losses up to CURVE_EARLY, then every 1/CURVE_SHARE of the run so far (a
    read costs about a millisecond on a long history: 17 reads in 1,500 steps, 27 in 15,000), or
    every 1/CURVE_QUIET_SHARE of it in a ``quiet`` run (no warning or error so far: 12 reads in
    1,500 steps, 18 in 15,000); a run that found something is read as often as before from its
    next read on. The first CURVE_EARLY losses are read alike in every run."""
    if total < CURVE_EARLY:
        return total + CURVE_EVERY
    return total + max(CURVE_EVERY, total // (CURVE_QUIET_SHARE if quiet else CURVE_SHARE))


class StepHooks:
    """Observer methods called by the optimizer step hooks, and the step clock."""

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
                # ... but step(closure)'s closure runs the step's forward and loss: watch those
                return self._watched_closure(optimizer, args, kwargs)
        except Exception as exc:
            self._fail("optimizer step pre-hook", exc)
        return None

    def _watched_closure(self, optimizer: torch.optim.Optimizer, args: Any,
                         kwargs: Any) -> tuple[Any, Any] | None:
        """``step``'s (args, kwargs) with its closure wrapped so that the function mode is on while
        the closure runs (its forward, loss and backward) and off again for the optimizer's own
        arithmetic; None (the call unchanged) when the step has no closure. The wrapper returns
        the closure's result and raises its exceptions unchanged. ``args`` start with the
        optimizer itself (``step``'s ``self``)."""
        in_kwargs = isinstance(kwargs, dict) and "closure" in kwargs
        at = 1 if args and args[0] is optimizer else 0
        closure = kwargs["closure"] if in_kwargs else (args[at] if len(args) > at else None)
        if not callable(closure):
            return None
        watched = _watching(self, closure)
        if in_kwargs:
            return tuple(args), {**kwargs, "closure": watched}
        return (*args[:at], watched, *args[at + 1:]), kwargs

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
                self._pending_eval.resolve(state.record_eval)
            if self._residuals.items:  # ... and of held-out residuals (monitor/residuals.py)
                self._residuals.flush(state.record_eval)
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
            self._dispatch(CurveDue(step=state.step))
            # (after the read: a warning it found counts)
            self._curve_due = next_curve_read(total, quiet=not self.sink.alarms)
            sampled = None  # a check may have boosted the schedule: ask it again
        self._forwards_since_tick = 0
        if self._light:
            self._set_light(False)
        if sampled is None:
            sampled = self.schedule.sampled(self.clock)
        if sampled and not self._heavy:
            # a sampled step follows unsampled ones: the run so far sets how rare the next ones are
            self.schedule.on_sample(self.clock, self.sink.alarms)
        if sampled:
            self._next_look()  # (routes.py: the spread checks whose turn it is)
        if sampled or self._heavy or self._mode is not None:
            self._set_heavy(sampled)
            if self._heavy and (self._mode is None or not self._mode.enabled):
                self._push_mode()  # (popped, or disabled under a mode of the user's, for the step)
        state.sampled = self._heavy

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


class StopTraining(BaseException):
    """Raised from the optimizer hook to end a script cleanly after ``--max-steps``."""

    def __init__(self, steps: int) -> None:
        super().__init__(f"nndoctor stopped the script after {steps} training steps (--max-steps)")
        self.steps = steps


def _watching(observer: Any, closure: Callable[..., Any]) -> Callable[..., Any]:
    """``closure`` run with ``observer``'s function mode pushed while the step is a sampled one."""

    @functools.wraps(closure)
    def watched(*args: Any, **kwargs: Any) -> Any:
        pushed = False
        try:
            if observer._active and observer._heavy and (observer._mode is None or not observer._mode.enabled):
                observer._push_mode()
                pushed = True
        except Exception as exc:
            observer._fail("optimizer step closure", exc)
        try:
            return closure(*args, **kwargs)
        finally:
            if pushed:
                try:
                    observer._pop_mode()
                except Exception as exc:
                    observer._fail("optimizer step closure", exc)

    return watched
