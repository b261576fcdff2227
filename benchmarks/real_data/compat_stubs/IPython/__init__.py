"""A do-nothing stand-in for IPython (not installed here), which the exported notebooks use only to
redraw their output: ``from IPython import display; display.clear_output(wait=True)`` and
``from IPython.display import HTML, display`` run and show nothing (every name is the matplotlib
stand-in's ``Anything``)."""

from __future__ import annotations

from matplotlib import Anything, anything_attr

__all__ = ["Anything"]
__version__ = "0.0-stub"
__getattr__ = anything_attr
