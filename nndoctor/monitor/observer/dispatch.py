"""Events to checks, and fault isolation: a check's exception switches that check off; one in
the observer's own code (its package and the monitor modules it runs) is reported once and
switches nndoctor off, leaving the user's training unchanged (mixed into
:class:`~nndoctor.monitor.observer.Observer`)."""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import traceback
from typing import Any, Callable, Iterable

import torch

from nndoctor.checks import Check
from nndoctor.findings import InternalError

__all__ = ["Dispatch"]

logger = logging.getLogger("nndoctor")

_DisableTorchFunction = getattr(torch._C, "DisableTorchFunction", contextlib.nullcontext)
_mode_on = getattr(torch._C, "_is_torch_function_mode_enabled", lambda: True)

_PACKAGE = os.path.dirname(os.path.abspath(__file__))
_MONITOR = os.path.dirname(_PACKAGE)

#: the observer's own modules: an exception raised inside them (even through a check) is a fault of
#: the observer, which then switches off entirely (a check's own fault only switches that check off)
_OBSERVER_FILES = frozenset(
    [os.path.join(_PACKAGE, name) for name in os.listdir(_PACKAGE) if name.endswith(".py")]
    + [os.path.join(_MONITOR, f"{name}.py")
       for name in ("busy", "functions", "discovery", "state", "history", "sampling", "loaders",
                    "compat", "sink", "events", "ending")]
)


class Dispatch:
    """Observer methods that send events to checks and handle faults."""

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


def _raised_in_observer(exc: BaseException) -> bool:
    """Whether ``exc`` was raised inside the observer's own modules (its innermost frame)."""
    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    return tb is not None and tb.tb_frame.f_code.co_filename in _OBSERVER_FILES
