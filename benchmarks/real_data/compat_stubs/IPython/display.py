"""``IPython.display`` of the do-nothing IPython stand-in: ``clear_output``, ``display``, ``HTML``,
``Image`` and every other name accept anything and show nothing."""

from __future__ import annotations

from matplotlib import Anything, anything_attr

__all__ = ["Anything"]
__getattr__ = anything_attr
