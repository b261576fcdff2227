"""SIGTERM handled like Ctrl-C, so a ``timeout`` in CI still gets the summary and the reports.

``with terminate_as_interrupt():`` turns SIGTERM into :class:`Terminated`, a
:class:`KeyboardInterrupt`, so every ``except KeyboardInterrupt`` that already saves work on
Ctrl-C saves it on SIGTERM too. :func:`interrupt_exit_code` gives the shell's convention,
128 + the signal number (130 for Ctrl-C, 143 for SIGTERM). Handlers can only be installed in
the main thread: elsewhere the context manager does nothing. The previous handler comes back
on exit.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from types import FrameType
from typing import Iterator

__all__ = ["Terminated", "interrupt_exit_code", "interrupt_name", "terminate_as_interrupt"]


class Terminated(KeyboardInterrupt):
    """SIGTERM (or another terminating signal) received: handled like Ctrl-C."""

    def __init__(self, signum: int = signal.SIGTERM) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = int(signum)


def interrupt_exit_code(exc: BaseException) -> int:
    """128 + the signal number: 143 for SIGTERM, 130 for Ctrl-C (SIGINT)."""
    return 128 + (exc.signum if isinstance(exc, Terminated) else int(signal.SIGINT))


def interrupt_name(exc: BaseException) -> str:
    """``"SIGTERM"`` or ``"SIGINT"`` (Ctrl-C)."""
    return signal.Signals(exc.signum).name if isinstance(exc, Terminated) else "SIGINT"


def _raise_terminated(signum: int, frame: FrameType | None) -> None:
    raise Terminated(signum)


@contextlib.contextmanager
def terminate_as_interrupt(signals: tuple[int, ...] = (signal.SIGTERM,)) -> Iterator[None]:
    """Within the block, the given signals raise :class:`Terminated` in the main thread."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous: dict[int, object] = {}
    try:
        for signum in signals:
            previous[signum] = signal.signal(signum, _raise_terminated)
        yield
    finally:
        for signum, handler in previous.items():
            # None: installed from C, not restorable from Python; the default is the closest
            signal.signal(signum, signal.SIG_DFL if handler is None else handler)  # type: ignore[arg-type]
