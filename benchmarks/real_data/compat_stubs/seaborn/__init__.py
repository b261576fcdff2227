"""A do-nothing stand-in for seaborn (not installed here), which the real scripts only plot with:
every function returns the matplotlib stand-in's ``Anything`` (``sns.lmplot(...).savefig(...)`` runs
and draws nothing)."""

from __future__ import annotations

from typing import Any

from matplotlib import Anything

__all__ = ["Anything"]
__version__ = "0.0-stub"


def __getattr__(name: str) -> Any:
    if name.startswith("__"):
        raise AttributeError(name)
    return Anything()
