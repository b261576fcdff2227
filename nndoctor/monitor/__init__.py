"""Watching training as it happens: hooks, sampling, events and the dynamics checks."""

from __future__ import annotations

from nndoctor.monitor.observer import Observer, StopTraining
from nndoctor.monitor.sampling import Schedule

__all__ = ["Observer", "Schedule", "StopTraining"]
