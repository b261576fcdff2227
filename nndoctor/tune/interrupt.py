"""SIGTERM handled like Ctrl-C while tuning, so a stopped worker keeps its study and prints its summary."""

from __future__ import annotations

import contextlib
import signal
import threading
from dataclasses import dataclass
from typing import Any, Iterator

__all__ = ["Interrupt", "sigterm_as_interrupt"]


@dataclass
class Interrupt:
    """Which signal stopped the run (None: none yet), and the exit code to return for it."""

    signum: int | None = None

    @property
    def name(self) -> str:
        return "SIGTERM" if self.signum == signal.SIGTERM else "Ctrl-C"

    @property
    def exit_code(self) -> int:
        return 128 + (self.signum or signal.SIGINT)


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[Interrupt]:
    """Inside the block, SIGTERM raises KeyboardInterrupt in the main thread (as Ctrl-C does).

    The previous handler is restored on exit. Outside the main thread nothing is installed.
    """
    state = Interrupt()
    if threading.current_thread() is not threading.main_thread():
        yield state
        return

    def on_signal(signum: int, frame: Any) -> None:
        state.signum = signum
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, on_signal)
    previous_int = signal.getsignal(signal.SIGINT)
    if previous_int is signal.default_int_handler:  # Ctrl-C: note it too, then the usual KeyboardInterrupt
        signal.signal(signal.SIGINT, on_signal)
    try:
        yield state
    finally:
        signal.signal(signal.SIGTERM, previous)
        if previous_int is signal.default_int_handler:
            signal.signal(signal.SIGINT, previous_int)
