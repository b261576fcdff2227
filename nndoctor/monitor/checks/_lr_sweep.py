"""A too-low learning rate that the script itself abandoned: a sweep inside one script.

Not a check module (the leading underscore keeps the autoloader away). Scripts that try several
learning rates in turn (``for lr in [1e-4, 1e-3, 1e-2, 1e-1]: model = build(); opt = SGD(...,
lr=lr); ...``), keep the best and retrain with it, run some of their candidates at a rate that is
too low on purpose. What ``lr.too-low`` says of such a candidate is true, but it is not the
script's problem when a later optimizer, with a rate several times higher, then trains the model
to a loss well below what the slow one reached. :func:`abandoned_for_better` tells that from a
too-low rate that stays (the only optimizer of the run, or later optimizers no faster, or a loss
that never comes down).
"""

from __future__ import annotations

import math
import statistics
from typing import Any

__all__ = ["abandoned_for_better"]

FASTER = 3.0  # a later optimizer's rate at least this many times the judged one's...
MIN_LATER_STEPS = 20  # ...that took at least this many steps...
LOWER = 0.5  # ...after which the loss ends at most this share of the slow optimizer's level
TAIL = 10  # losses whose median is the end level
MIN_AFTER = 20  # losses recorded after the slow optimizer's last step


def abandoned_for_better(state: Any, judged: Any, lr: float, level: float) -> dict[str, Any] | None:
    """Evidence that the optimizer ``judged`` (an ``OptimizerInfo``), found too slow at rate ``lr``
    with its loss at ``level``, was replaced by a faster optimizer that then trained the model well;
    None when it was not (it still runs, no later optimizer is faster, or the loss stayed up)."""
    if not (math.isfinite(level) and level > 0 and lr > 0):
        return None
    later = [info for info in state.optimizers.values()
             if info is not judged and info.last_step > judged.last_step and info.steps >= MIN_LATER_STEPS
             and isinstance(info.lr, (int, float)) and info.lr >= FASTER * lr]
    if not later:
        return None
    steps, values = state.losses.series()
    after = [v for s, v in zip(steps, values) if s > judged.last_step and math.isfinite(v)]
    if len(after) < MIN_AFTER:
        return None
    end = statistics.median(after[-TAIL:])
    if end > LOWER * level:
        return None
    best = max(later, key=lambda info: info.last_step)
    return {"abandoned_at_step": judged.last_step, "later_optimizer": best.name, "later_lr": best.lr,
            "later_steps": best.steps, "later_loss": round(end, 6)}
