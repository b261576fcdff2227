"""The module forward hooks: the per-root pre-hook (every forward of a model; kept short) and,
on sampled steps, the global pre/post hooks that keep the module stack (mixed into
:class:`~nndoctor.monitor.observer.Observer`)."""

from __future__ import annotations

import threading
from typing import Any

import torch

from nndoctor.monitor.events import EvalInput, ModelInput, ModuleOutput
from nndoctor.monitor.functions import _FORKS
from nndoctor.monitor.tensors import dense_inputs, transformed

__all__ = ["EVAL_LOSS_FORWARDS", "ForwardHooks"]

_grad_enabled = torch.is_grad_enabled
_graph_task = torch._C._current_graph_task_id  # -1 outside a backward pass

#: root-model forwards without grad after a step whose losses are recorded as evaluation losses
EVAL_LOSS_FORWARDS = 64


class ForwardHooks:
    """Observer methods called by the module forward hooks."""

    def _fwd_pre(self, module: torch.nn.Module, args: tuple[Any, ...]) -> None:
        if self._busy or _FORKS[0] != self._pid or threading.get_ident() != self._thread:
            if self._off_due:
                self._switch_off()
            return None
        try:
            if self._prep_paused:
                self._resume_after_preparation()  # (data preparation is over: a model runs)
            if not self._stack and id(module) not in self.state.models:
                # (a TorchScript copy is the user's export, not the model being trained)
                # (nor is a layer re-run during backward by activation checkpointing: a recomputation)
                if self.discover and any(True for _ in module.parameters()) \
                        and not isinstance(module, torch.jit.ScriptModule) and _graph_task() == -1:
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
            if "module_output" in self._by_kind and (checks := self._module_checks(module)) \
                    and not transformed((output, *args)):
                name = self.state.module_name(module)
                self._dispatch(ModuleOutput(module=module, name=name, inputs=args, output=output,
                                            step=self.state.step, grad_enabled=torch.is_grad_enabled()),
                               checks=checks)
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
        if (not grad or not training) and self._residuals.active:
            self._outside.on_eval_input(state.step, args)  # (converted for a plot: no target; outside.py)
        heavy = self._heavy
        if grad:
            self.loaders.train_mark = self.loaders.fetches
            self.loaders.train_current = self.loaders.current
            if training is not info.grad_training:
                if info.grad_training is not None and not heavy:
                    schedule, clock = self.schedule, self.clock
                    if info.flip_clock == clock:
                        # back to the mode it trained in within the same step: the forward in between
                        # was an evaluation with gradient enabled (model.eval(); model(x) without
                        # no_grad, as pygcn validates each epoch), not training in the other mode
                        schedule.boosted_until, schedule.period, schedule._calm = info.unboosted
                        info.flip_clock = -1
                    else:
                        # a model trained in the other mode than before (e.g. left in eval mode after
                        # validation): look closely from the next step on
                        info.flip_clock = clock
                        info.unboosted = (schedule.boosted_until, schedule.period, schedule._calm)
                        schedule.boost(clock, 3)
                info.grad_training = training
        elif "eval_input" in self._by_kind and not transformed(args):
            seen, seen_kw = dense_inputs(args, kwargs)
            self._dispatch(EvalInput(model=module, name=info.name, args=seen, kwargs=seen_kw,
                                     step=state.step, training=training,
                                     grad_enabled=grad, sampled=heavy))
        if (self._by_kind if heavy else self._by_kind_unsampled).get("model_input") and not transformed(args):
            seen, seen_kw = dense_inputs(args, kwargs)
            self._dispatch(ModelInput(model=module, name=info.name, args=seen, kwargs=seen_kw,
                                      step=state.step, training=training,
                                      grad_enabled=grad, sampled=heavy))
