"""Bounded, cheap histories of per-step scalars (loss, lr...).

Values arrive as 0-d tensors (possibly on an accelerator) and are kept as tensors until
a batch is read, so recording never forces a host sync. Memory is bounded: the most
recent ``capacity`` values are kept exactly, older ones are thinned (every other value
dropped), so 100k steps cost the same memory as 10k.
"""

from __future__ import annotations

import math
from typing import Iterator

import torch

__all__ = ["History"]


class History:
    def __init__(self, name: str, capacity: int = 4096, flush_every: int = 64) -> None:
        if capacity < 16:
            raise ValueError(f"capacity must be >= 16, got {capacity!r}")
        self.name = name
        self.capacity = capacity
        self.flush_every = flush_every
        self._pending: list[tuple[int, torch.Tensor | float]] = []
        self.steps: list[int] = []
        self.values: list[float] = []
        self.total = 0  # values ever recorded

    def record(self, step: int, value: torch.Tensor | float) -> None:
        if isinstance(value, torch.Tensor):
            value = value.detach()
        self._pending.append((step, value))
        self.total += 1
        if len(self._pending) >= self.flush_every:
            self.flush()

    def record_float(self, step: int, value: float) -> None:
        """:meth:`record` for a Python float (the hot path of CPU training: no type checks, and
        straight into the series unless tensors wait to be read before it)."""
        if self._pending:
            self.record(step, value)
            return
        self.total += 1
        values = self.values
        self.steps.append(step)
        values.append(value)
        if len(values) > self.capacity:
            self._thin()

    def flush(self) -> None:
        if not self._pending:
            return
        pending, self._pending = self._pending, []
        tensors = [v for _, v in pending if isinstance(v, torch.Tensor)]
        floats: list[float] = []
        if tensors:
            try:
                flat = torch.stack([t.reshape(()).float() for t in tensors]).cpu().tolist()
            except RuntimeError:
                flat = [float(t.reshape(-1)[0]) for t in tensors]
            it: Iterator[float] = iter(flat)
            floats = [next(it) if isinstance(v, torch.Tensor) else float(v) for _, v in pending]
        else:
            floats = [float(v) for _, v in pending]
        self.steps.extend(s for s, _ in pending)
        self.values.extend(floats)
        if len(self.values) > self.capacity:
            self._thin()

    def cap_steps(self, step: int) -> None:
        """Label the values recorded after ``step`` with ``step`` (their steps were miscounted)."""
        self.steps = [min(s, step) for s in self.steps]
        self._pending = [(min(s, step), v) for s, v in self._pending]

    def _thin(self) -> None:
        # keep the newest half exact, thin the older half by two
        half = self.capacity // 2
        old_s, new_s = self.steps[:-half], self.steps[-half:]
        old_v, new_v = self.values[:-half], self.values[-half:]
        self.steps = old_s[::2] + new_s
        self.values = old_v[::2] + new_v

    def __len__(self) -> int:
        return len(self.values) + len(self._pending)

    def series(self) -> tuple[list[int], list[float]]:
        self.flush()
        return list(self.steps), list(self.values)

    def last(self, n: int) -> list[float]:
        self.flush()
        return self.values[-n:]

    def first_nonfinite(self) -> tuple[int, float] | None:
        self.flush()
        for s, v in zip(self.steps, self.values):
            if not math.isfinite(v):
                return s, v
        return None
