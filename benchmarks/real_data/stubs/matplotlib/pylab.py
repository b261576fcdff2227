"""``matplotlib.pylab`` of the do-nothing matplotlib stand-in.

The real ``pylab`` is numpy's namespace (``from numpy import *``, ``numpy.random``, ``numpy.fft``,
``numpy.linalg``) plus pyplot's: ``from matplotlib.pylab import *`` gives a script ``pi``, ``sin``,
``deg2rad``, ``random()``, ... as numpy's own, and ``figure``, ``style``, ``plot``, ... as the
stand-in's ``Anything``. The numbers a script computes are numpy's, unchanged.
"""

from __future__ import annotations

from typing import Any

import numpy as np  # noqa: F401  (pylab gives np)
from numpy import *  # noqa: F403
from numpy.fft import *  # noqa: F403
from numpy.linalg import *  # noqa: F403
from numpy.random import *  # noqa: F403

import matplotlib  # noqa: F401  (pylab gives matplotlib: matplotlib.transforms.Affine2D())
from matplotlib import Anything

_PLOTTING = ("figure", "style", "plot", "scatter", "subplot", "subplots", "show", "axis", "xlabel", "ylabel", "title",
             "legend", "grid", "gca", "gcf", "savefig", "close", "ion", "ioff", "pause", "imshow", "colorbar",
             "xlim", "ylim", "rc", "draw", "clf", "cla", "text", "fill_between", "hist", "bar", "axhline", "axvline")
for _name in _PLOTTING:
    globals()[_name] = Anything()

__all__ = sorted(n for n in globals() if not n.startswith("_") and n not in ("annotations", "Any"))


def __getattr__(name: str) -> Any:
    if name.startswith("__"):
        raise AttributeError(name)
    return Anything()
