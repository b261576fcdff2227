"""A do-nothing stand-in for matplotlib's ``mpl_toolkits`` (``from mpl_toolkits.mplot3d import Axes3D``)."""

from __future__ import annotations

import sys

from matplotlib import Anything, _StubModule

__all__ = ["mplot3d"]

mplot3d = _StubModule(f"{__name__}.mplot3d")
mplot3d.Axes3D = Anything()  # type: ignore[attr-defined]
sys.modules[mplot3d.__name__] = mplot3d
