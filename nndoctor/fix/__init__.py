"""Verified fixes: each diagnosed root cause's remedy, tried in a re-run of the unchanged script."""

from __future__ import annotations

from nndoctor.fix.remedies import REMEDIES, Remedy, remedy_for
from nndoctor.fix.session import Attempt, FixSession, run_fix

__all__ = ["REMEDIES", "Attempt", "FixSession", "Remedy", "remedy_for", "run_fix"]
