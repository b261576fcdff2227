"""``load_state_dict`` of a watched root model: a :class:`~nndoctor.monitor.events.StateLoad`
event once the state is in (mixed into :class:`~nndoctor.monitor.observer.Observer`).

Two hooks per root model, registered at its discovery when a check wants ``state_load`` events:
a pre-hook that notes whether the state dict's tensors are the model's own parameters (a
"copy" that is a reference), and a post-hook that sends the event. Loading weights before the
model's first forward (pretrained weights) is not seen: the model is not known yet.
"""

from __future__ import annotations

import threading
from typing import Any, Callable

import torch

from nndoctor.monitor.events import StateLoad
from nndoctor.monitor.functions import _FORKS
from nndoctor.monitor.tensors import local

__all__ = ["LoadHooks", "aliases_parameters"]

#: parameters compared by storage with the state dict's tensors
_ALIASED_PARAMS = 4
#: parameter tensors, and values of each, compared before and after a load ("did it change anything")
_SAMPLE_TENSORS, _SAMPLE_VALUES = 8, 16
_PENDING = "nndoctor.load_before"


def _sample(module: torch.nn.Module) -> list[torch.Tensor]:
    out = []
    for p in module.parameters():
        if len(out) >= _SAMPLE_TENSORS:
            break
        flat = local(p).detach().reshape(-1)
        if flat.numel():
            out.append(flat[:: max(1, flat.numel() // _SAMPLE_VALUES)][:_SAMPLE_VALUES].clone())
    return out


def aliases_parameters(module: torch.nn.Module, state_dict: Any, prefix: str = "") -> bool:
    """Whether ``state_dict`` holds the module's own parameter tensors (same storage, same shape):
    ``model.state_dict()`` kept without a copy."""
    if not hasattr(state_dict, "get"):
        return False
    seen = 0
    for name, param in module.named_parameters():
        value = state_dict.get(prefix + name)
        if not isinstance(value, torch.Tensor) or value.shape != param.shape or not param.numel():
            return False
        if value.data_ptr() != param.data_ptr() or value.device != param.device:
            return False
        seen += 1
        if seen >= _ALIASED_PARAMS:
            break
    return seen > 0


class LoadHooks:
    """Observer methods behind the load_state_dict hooks of root models."""

    # provided by the Observer
    state: Any
    _by_kind: dict[str, list[Any]]
    _busy: bool
    _pid: int
    _thread: int
    _active: bool
    _load_handles: list[Any]
    _dispatch: Callable[..., None]
    _fail: Callable[..., None]

    def _hook_loads(self, module: torch.nn.Module) -> None:
        if "state_load" not in self._by_kind or isinstance(module, torch.jit.ScriptModule):
            return
        self._load_handles.append(module.register_load_state_dict_pre_hook(self._load_pre))
        self._load_handles.append(module.register_load_state_dict_post_hook(self._load_post))

    def _remove_load_hooks(self) -> None:
        handles, self._load_handles = self._load_handles, []
        for handle in handles:
            handle.remove()

    def _watching_loads(self) -> bool:
        return (self._active and not self._busy and _FORKS[0] == self._pid
                and threading.get_ident() == self._thread)

    def _load_pre(self, module: torch.nn.Module, state_dict: Any, prefix: str, *_: Any) -> None:
        if not self._watching_loads():
            return None
        try:
            if id(module) in self.state.models:
                with torch.no_grad():
                    self.state.extra[_PENDING] = (id(module), aliases_parameters(module, state_dict, prefix),
                                                  _sample(module))
        except Exception as exc:
            self._fail("load_state_dict pre-hook", exc)
        return None

    def _load_post(self, module: torch.nn.Module, incompatible: Any) -> None:
        if not self._watching_loads():
            return None
        try:
            info = self.state.models.get(id(module))
            if info is None or info.ref() is not module:
                return None
            pending = self.state.extra.pop(_PENDING, None)
            if pending is None or pending[0] != id(module):
                return None
            with torch.no_grad():
                after = _sample(module)
            changed = len(after) != len(pending[2]) or not all(
                a.shape == b.shape and torch.equal(a, b) for a, b in zip(after, pending[2]))
            self._dispatch(StateLoad(model=module, name=info.name, step=self.state.step, aliased=pending[1],
                                     changed=changed))
        except Exception as exc:
            self._fail("load_state_dict post-hook", exc)
        return None
