"""The observer's re-entrancy guard: while nndoctor does its own work, its hooks pass through.

``with observer.busy:`` marks the observer busy (``observer._busy``, which every hook tests
first) and restores the previous value on the way out, nested or not, whatever is raised:
a check's tensor arithmetic, a clipping wrapper's measurement or a ``torch.jit.trace`` of the
user's model must not be seen as the user's training (events, losses, steps).
"""

from __future__ import annotations

from typing import Any

__all__ = ["Busy"]


class Busy:
    """A reusable, re-entrant context manager over one observer's ``_busy`` flag (a class, not a
    generator: ``_dispatch`` enters it on every event of a sampled step)."""

    __slots__ = ("_observer", "_saved")

    def __init__(self, observer: Any) -> None:
        self._observer = observer
        self._saved: list[bool] = []

    def __enter__(self) -> None:
        observer = self._observer
        self._saved.append(observer._busy)
        observer._busy = True

    def __exit__(self, *exc: object) -> bool:
        self._observer._busy = self._saved.pop() if self._saved else False
        return False
