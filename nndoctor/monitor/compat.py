"""What the observer leaves on the user's objects must survive what scripts do with them.

A watched model carries the observer's per-root forward pre-hook and, when a check wants them,
its load_state_dict hooks (bound methods of the :class:`~nndoctor.monitor.observer.Observer`). While a run is observed, this module makes

- pickling (``torch.save(model)``, ``pickle``, ``copy.deepcopy``, DataLoader workers) leave
  nndoctor's hooks out of the copy: a checkpoint written under ``nndoctor run`` loads where
  nndoctor is not installed, and a copy made during the run carries no live reference;
- ``torch.jit.script`` compile the model without nndoctor's hooks (TorchScript cannot compile
  them), and ``torch.jit.trace`` record the user's computation only (the observer pauses);
- ``torch.compile`` (TorchDynamo) skip nndoctor's code instead of tracing it: the hooks run
  eagerly between compiled graphs.

The patches are installed by the observer on entry and removed on exit; a wrapper kept by the
script past the run (``from torch.jit import script``) passes straight through.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import sys
from collections import OrderedDict
from typing import Any, Callable

import torch

__all__ = ["InertObserver", "install", "register_dynamo_skip", "uninstall"]

logger = logging.getLogger("nndoctor")

#: the observers running in this process (normally one)
_ACTIVE: list[Any] = []
_ORIGINALS: dict[str, Callable[..., Any]] = {}
_DYNAMO_SKIP = [False]


def _hook_owner(hook: Any) -> Any:
    """The observer a hook belongs to, if it is one of nndoctor's (a bound method)."""
    owner = getattr(hook, "__self__", None)
    return owner if any(owner is obs for obs in _ACTIVE) else None


#: load_state_dict hook dicts of a module (observer/loads.py); a pre-hook is kept wrapped (``.hook``)
_LOAD_HOOKS = ("_load_state_dict_pre_hooks", "_load_state_dict_post_hooks")


def _without_our_hooks(state: dict[str, Any]) -> dict[str, Any]:
    for key in _LOAD_HOOKS:
        held = state.get(key)
        if held and any(_hook_owner(getattr(h, "hook", h)) is not None for h in held.values()):
            state[key] = OrderedDict((k, h) for k, h in held.items() if _hook_owner(getattr(h, "hook", h)) is None)
    hooks = state.get("_forward_pre_hooks")
    if not hooks:
        return state
    ours = [key for key, hook in hooks.items() if _hook_owner(hook) is not None]
    if ours:
        state["_forward_pre_hooks"] = OrderedDict((k, h) for k, h in hooks.items() if k not in ours)
        kwargs = state.get("_forward_pre_hooks_with_kwargs")
        if kwargs:
            # (an OrderedDict as torch's own: a hook handle keeps a weak reference to it)
            state["_forward_pre_hooks_with_kwargs"] = OrderedDict((k, v) for k, v in kwargs.items() if k not in ours)
    return state


def _getstate(self: torch.nn.Module) -> Any:  # installed as torch.nn.Module.__getstate__
    state = _TRUE["getstate"](self)
    if _ACTIVE and isinstance(state, dict):
        try:
            state = _without_our_hooks(state)
        except Exception as exc:  # the copy keeps the hook: it pickles as an inert one
            _fault("pickling", exc)
    return state


def _fault(where: str, exc: BaseException) -> None:
    """A fault in this module's own code: the observers report it and switch off."""
    for obs in list(_ACTIVE):
        obs._fail(where, exc)


def _inert(*args: Any, **kwargs: Any) -> None:
    """What nndoctor's hook on a copied object does: nothing."""
    return None


class InertObserver:
    """What an :class:`~nndoctor.monitor.observer.Observer` becomes when something pickles or
    deep-copies a reference to it (a hook left on a module whose ``__getstate__`` keeps it):
    its hooks do nothing, and it holds nothing."""

    __slots__ = ()

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return _inert

    def __reduce__(self) -> tuple[Any, ...]:
        return (InertObserver, ())


def _paused_observers() -> contextlib.ExitStack:
    """Every active observer busy (its hooks pass through) until the stack closes."""
    stack = contextlib.ExitStack()
    for obs in list(_ACTIVE):
        stack.enter_context(obs.busy)
    return stack


def _script(obj: Any, *args: Any, **kwargs: Any) -> Any:  # installed as torch.jit.script
    saved: list[tuple[Any, list[tuple[Any, Any]], dict[Any, Any]]] = []
    if _ACTIVE and isinstance(obj, torch.nn.Module):
        try:
            for module in obj.modules():
                hooks = module._forward_pre_hooks
                if hooks and any(_hook_owner(h) is not None for h in hooks.values()):
                    kwargs_flags = module._forward_pre_hooks_with_kwargs
                    saved.append((module, list(hooks.items()), dict(kwargs_flags)))
                    state = _without_our_hooks({"_forward_pre_hooks": hooks,
                                                "_forward_pre_hooks_with_kwargs": kwargs_flags})
                    kept, kept_flags = state["_forward_pre_hooks"], state["_forward_pre_hooks_with_kwargs"]
                    hooks.clear()
                    hooks.update(kept)
                    kwargs_flags.clear()
                    kwargs_flags.update(kept_flags)
        except Exception as exc:
            _fault("torch.jit.script", exc)
    try:
        with _paused_observers():
            return _TRUE["script"](obj, *args, **kwargs)
    finally:
        for module, items, flags in saved:  # the same dicts (handles keep weak references to them)
            module._forward_pre_hooks.clear()
            module._forward_pre_hooks.update(items)
            module._forward_pre_hooks_with_kwargs.clear()
            module._forward_pre_hooks_with_kwargs.update(flags)


def _paused(name: str) -> Callable[..., Any]:
    """A wrapper of ``torch.jit.<name>`` that pauses the observers while it runs (a trace records
    every tensor operation: the checks' own arithmetic must not end up in the user's graph)."""
    true = _TRUE[name]

    @functools.wraps(true)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if not _ACTIVE:
            return true(*args, **kwargs)
        with _paused_observers():
            return true(*args, **kwargs)

    return wrapper


def register_dynamo_skip() -> None:
    """Tell TorchDynamo to call nndoctor's code instead of tracing it (once per process)."""
    if _DYNAMO_SKIP[0]:
        return
    _DYNAMO_SKIP[0] = True
    try:
        from torch._dynamo import trace_rules

        trace_rules.add(__name__.split(".")[0])
    except Exception as exc:  # another torch version: compiled models may graph-break on the hooks
        logger.debug("nndoctor could not ask torch.compile to skip its code", exc_info=exc)


def _compile(*args: Any, **kwargs: Any) -> Any:  # installed as torch.compile
    if _ACTIVE:
        register_dynamo_skip()
    return _TRUE["compile"](*args, **kwargs)


_TRUE: dict[str, Callable[..., Any]] = {}  # torch's own functions, captured before the first patch
_REPLACEMENTS: dict[str, Callable[..., Any]] = {}
_TARGETS = (("getstate", torch.nn.Module, "__getstate__"), ("script", torch.jit, "script"),
            ("trace", torch.jit, "trace"), ("trace_module", torch.jit, "trace_module"),
            ("compile", torch, "compile"))


def _replacement(key: str) -> Callable[..., Any]:
    made = _REPLACEMENTS.get(key)
    if made is None:
        true = _TRUE[key]
        if key == "getstate":
            made = _getstate
        elif key in ("trace", "trace_module"):
            made = _paused(key)
        else:
            inner = _script if key == "script" else _compile

            def made(*args: Any, **kwargs: Any) -> Any:
                return inner(*args, **kwargs)

            functools.update_wrapper(made, true)
        _REPLACEMENTS[key] = made
    return made


def install(observer: Any) -> None:
    """Patch torch for ``observer`` (the first observer of the process installs the patches)."""
    if not _ACTIVE:
        for key, owner, attr in _TARGETS:
            current = getattr(owner, attr, None)
            if current is None:
                continue
            _TRUE.setdefault(key, current)
            _ORIGINALS[key] = current
            setattr(owner, attr, _replacement(key))
    _ACTIVE.append(observer)
    if "torch._dynamo" in sys.modules:
        register_dynamo_skip()


def uninstall(observer: Any) -> None:
    """Undo :func:`install` (the last observer of the process restores torch)."""
    _ACTIVE[:] = [obs for obs in _ACTIVE if obs is not observer]
    if _ACTIVE:
        return
    for key, owner, attr in _TARGETS:
        if key in _ORIGINALS:
            setattr(owner, attr, _ORIGINALS.pop(key))
