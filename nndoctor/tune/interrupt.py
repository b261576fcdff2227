"""SIGTERM handled like Ctrl-C while tuning, so a stopped worker keeps its study and prints its summary.

A signal that arrives while the study storage is being written (Optuna's journal file and
its lock, SQLAlchemy, the database driver) is held back until the write is over, so the
journal and its lock are never left half-written: :func:`check` raises it at the next safe
point (run_trials calls it before training, after each reported epoch and between
trials). A second signal does not wait.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from dataclasses import dataclass
from types import FrameType
from typing import Any, Iterator

__all__ = ["Interrupt", "check", "sigterm_as_interrupt"]

#: code that must not be interrupted half-way (file and database writes of the study)
_STORAGE_CODE = tuple(os.sep + p + os.sep for p in (os.path.join("optuna", "storages"), "sqlalchemy", "psycopg2",
                                                        "psycopg"))


@dataclass
class Interrupt:
    """Which signal stopped the run (None: none yet), and the exit code to return for it."""

    signum: int | None = None
    pending: bool = False

    @property
    def name(self) -> str:
        return "SIGTERM" if self.signum == signal.SIGTERM else "Ctrl-C"

    @property
    def exit_code(self) -> int:
        return 128 + (self.signum or signal.SIGINT)


_ACTIVE: list[Interrupt] = []


def _in_storage(frame: FrameType | None) -> bool:
    while frame is not None:
        if any(part in frame.f_code.co_filename for part in _STORAGE_CODE):
            return True
        frame = frame.f_back
    return False


def check() -> None:
    """Raise KeyboardInterrupt for a signal held back during a storage write (no-op otherwise)."""
    for state in _ACTIVE:
        if state.pending:
            state.pending = False
            raise KeyboardInterrupt


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[Interrupt]:
    """Inside the block, SIGTERM raises KeyboardInterrupt in the main thread (as Ctrl-C does).

    The previous handlers are restored on exit. Outside the main thread nothing is installed.
    """
    state = Interrupt()
    if threading.current_thread() is not threading.main_thread():
        yield state
        return

    def on_signal(signum: int, frame: FrameType | None) -> Any:
        state.signum = signum
        if state.pending or not _in_storage(frame):
            state.pending = False
            raise KeyboardInterrupt
        state.pending = True  # raised by check() once the write is over

    previous = signal.signal(signal.SIGTERM, on_signal)
    previous_int = signal.getsignal(signal.SIGINT)
    if previous_int is signal.default_int_handler:  # Ctrl-C: same path, so it is deferred the same way
        signal.signal(signal.SIGINT, on_signal)
    _ACTIVE.append(state)
    try:
        yield state
    finally:
        _ACTIVE.remove(state)
        signal.signal(signal.SIGTERM, previous)
        if previous_int is signal.default_int_handler:
            signal.signal(signal.SIGINT, previous_int)
