"""The heavy probes of a sampled step: the global module forward hooks, the optimizer step
pre-hook, the parameters' grad hooks and the torch function mode; switched on and off at each
step's end (mixed into :class:`~nndoctor.monitor.observer.Observer`)."""

from __future__ import annotations

import logging
import weakref
from typing import Any, Callable

import torch
import torch.nn.modules.module as module_hooks
import torch.optim.optimizer as optimizer_hooks

from nndoctor.monitor.events import GradContribution
from nndoctor.monitor.functions import _FORKS, FunctionMode
from nndoctor.monitor.tensors import materialised

__all__ = ["HeavyProbes"]

logger = logging.getLogger("nndoctor")

try:
    from torch.overrides import _get_current_function_mode as _current_mode
except ImportError:  # pragma: no cover - private API moved
    def _current_mode() -> Any:
        return None


class HeavyProbes:
    """Observer methods that switch the heavy probes (``_heavy``) and own the grad hooks."""

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
            if param is None or not param.requires_grad or not materialised(param):
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
