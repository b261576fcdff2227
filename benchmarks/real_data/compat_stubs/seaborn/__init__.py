"""A do-nothing stand-in for seaborn (not installed here), which the real scripts only plot with:
every function returns the matplotlib stand-in's ``Anything`` (``sns.lmplot(...).savefig(...)`` runs
and draws nothing)."""

from __future__ import annotations

from matplotlib import Anything, anything_attr

__all__ = ["Anything"]
__version__ = "0.0-stub"
__getattr__ = anything_attr
