"""When to look closely: dense at the start, then every ``every`` steps, rarer once the run looks
healthy, denser on demand."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Schedule"]


@dataclass
class Schedule:
    """Which steps get the heavy probes (function mode, per-module hooks, grad hooks).

    ``dense`` first steps are all sampled; after that one step in ``period``: ``every`` at first,
    doubled after ``relax_after + 1`` sampled steps of a run without any warning or error so far,
    then again after each ``relax_later`` quiet sampled steps at the longer period (up to
    ``every * max_stretch``), back to ``every`` for good once one is found, and until the next
    quiet stretch when a check boosts. The first ``(relax_after + 1) * every`` steps are always
    sampled at ``every``, so what is visible early is seen as early as before; a long healthy run
    pays for ever fewer sampled steps (18 in 1,500 steps, 28 in 15,000 with the defaults; 38 and 308 at 1 in 50). A check that sees something suspicious
    calls :meth:`boost` to look at the next steps too. ``max_stretch=1`` keeps 1 in ``every``.
    """

    dense: int = 8
    every: int = 50
    boosted_until: int = -1
    max_stretch: int = 32
    relax_after: int = 4
    relax_later: int = 2  # quiet samples at a stretched period before it doubles again
    period: int = 0  # the current gap between sampled steps (0: ``every``)
    _calm: int = 0  # quiet sampled steps at this period

    def __post_init__(self) -> None:
        if self.dense < 0:
            raise ValueError(f"dense must be >= 0, got {self.dense!r}")
        if self.every < 1:
            raise ValueError(f"every must be >= 1, got {self.every!r}")
        if self.max_stretch < 1:
            raise ValueError(f"max_stretch must be >= 1, got {self.max_stretch!r}")
        if self.relax_after < 1:
            raise ValueError(f"relax_after must be >= 1, got {self.relax_after!r}")
        if self.relax_later < 1:
            raise ValueError(f"relax_later must be >= 1, got {self.relax_later!r}")
        self.period = self.period or self.every

    def sampled(self, clock: int) -> bool:
        """``clock`` is the number of completed steps; the step in progress is ``clock + 1``."""
        return clock < self.dense or clock % self.period == 0 or clock <= self.boosted_until

    def boost(self, clock: int, steps: int = 5) -> None:
        self.boosted_until = max(self.boosted_until, clock + steps)
        self.period, self._calm = self.every, 0

    def on_sample(self, clock: int, alarms: int) -> None:
        """A regular sampled step (``clock`` a multiple of the period) ended; ``alarms``: the
        warnings and errors found so far. Stretches the period while the run stays quiet."""
        if alarms or clock <= self.boosted_until:
            self.period, self._calm = self.every, 0
            return
        self._calm += 1
        wait = self.relax_after + 1 if self.period == self.every else self.relax_later
        if self._calm >= wait and self.period < self.every * self.max_stretch:
            self.period, self._calm = min(self.period * 2, self.every * self.max_stretch), 0
