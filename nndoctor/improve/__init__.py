"""Improve step of the field guide: the ordered plan of what to try next."""

from __future__ import annotations

from nndoctor.improve.plan import PlanItem, build_plan

__all__ = ["PlanItem", "build_plan"]
