"""The noise run of ``nndoctor fix`` cut short when it repeats the diagnosis run exactly.

``fix`` runs the unchanged script twice to measure run-to-run noise. A seeded script repeats itself
bit for bit: its second run says "noise 0" and costs a whole run. Every run of ``fix`` notes the
values of its first :data:`PREFIX` backward calls (the training losses, exact floats); the noise run
compares its own with the diagnosis run's as it goes, and once the first ``min(PREFIX, len)`` of them
are equal bit for bit (at least :data:`MIN_PREFIX`), it stops: the run repeats the diagnosis, so
its figures are the diagnosis's. At the first difference (an unseeded script, a non-deterministic
kernel) it stops comparing and runs to the end, as before. Randomness that only the script's final
evaluation draws (an unseeded test subset while training is seeded) is not seen this way.
"""

from __future__ import annotations

import contextlib
import functools
import sys
from typing import Any, Callable

import torch

__all__ = ["MIN_PREFIX", "PREFIX", "RepeatWatch", "cpu_seconds", "stop_as_repeat", "watch_backward"]

#: backward calls whose values every run of ``fix`` notes
PREFIX = 64
#: the fewest equal values that make a run a repeat (shorter runs always run to the end)
MIN_PREFIX = 16


def _value(tensors: Any) -> float | str | None:
    """A scalar loss's exact value (None: not a scalar tensor, nothing to compare)."""
    if isinstance(tensors, torch.Tensor) and tensors.numel() == 1:
        return float(tensors.detach().item())
    return None


class RepeatWatch:
    """Notes the first :data:`PREFIX` backward values; given the diagnosis's (``expected``), calls
    ``on_repeat`` once as many are equal bit for bit, and gives up at the first difference."""

    def __init__(self, expected: list[float | None] | None, on_repeat: Callable[[], None]) -> None:
        self.seen: list[float | None] = []
        self.expected = expected if expected and len(expected) >= MIN_PREFIX else None
        self.on_repeat = on_repeat

    @property
    def active(self) -> bool:
        return len(self.seen) < PREFIX

    def note(self, value: float | None) -> None:
        if not self.active:
            return
        self.seen.append(value)
        if self.expected is None:
            return
        i = len(self.seen) - 1
        if i >= len(self.expected) or value is None or self.expected[i] != value:
            self.expected = None        # not a repeat: run to the end
            return
        if len(self.seen) == min(PREFIX, len(self.expected)):
            self.on_repeat()


def watch_backward(stack: contextlib.ExitStack, watch: RepeatWatch) -> None:
    """Feed ``watch`` the value of every backward call (torch.autograd.backward, which
    Tensor.backward calls) while it is active; undone by ``stack``."""
    original = torch.autograd.backward

    @functools.wraps(original)
    def backward(tensors: Any, *args: Any, **kwargs: Any) -> Any:
        if watch.active:
            try:
                watch.note(_value(tensors))
            except Exception:  # noqa: BLE001 - the watch never breaks the user's backward
                watch.expected = None
        return original(tensors, *args, **kwargs)

    torch.autograd.backward = backward  # type: ignore[assignment]
    stack.callback(setattr, torch.autograd, "backward", original)


def cpu_seconds() -> float:
    """CPU time of this process so far (imports included) and of its children that ended (DataLoader
    workers): what one run costs, whatever else the machine runs."""
    import resource
    import time

    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return round(time.process_time() + kids.ru_utime + kids.ru_stime, 3)


def stop_as_repeat(out: str) -> None:
    """End this run now as a repeat of the diagnosis: its result says so, nothing else is run."""
    import json

    sys.stdout.flush()
    sys.stderr.flush()
    with open(out, "w", encoding="utf-8") as fh:
        json.dump({"exit_code": 0, "report": None, "remedy_errors": [], "repeat_of_diagnosis": True,
                   "cpu_seconds": cpu_seconds()}, fh)
    from nndoctor.monitor.runner import exit_now

    exit_now(0)  # (past the guard that would write the script's own report first)
