"""When to look closely: dense at the start, then every ``every`` steps, denser on demand."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Schedule"]


@dataclass
class Schedule:
    """Which steps get the heavy probes (function mode, per-module hooks, grad hooks).

    ``dense`` first steps are all sampled; after that one step in ``every``. A check
    that sees something suspicious calls :meth:`boost` to look at the next steps too.
    """

    dense: int = 8
    every: int = 50
    boosted_until: int = -1

    def __post_init__(self) -> None:
        if self.dense < 0:
            raise ValueError(f"dense must be >= 0, got {self.dense!r}")
        if self.every < 1:
            raise ValueError(f"every must be >= 1, got {self.every!r}")

    def sampled(self, clock: int) -> bool:
        """``clock`` is the number of completed steps; the step in progress is ``clock + 1``."""
        return clock < self.dense or clock % self.every == 0 or clock <= self.boosted_until

    def boost(self, clock: int, steps: int = 5) -> None:
        self.boosted_until = max(self.boosted_until, clock + steps)
