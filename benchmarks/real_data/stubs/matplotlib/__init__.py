"""A do-nothing stand-in for matplotlib (not installed here): the real scripts plot as they train.

Every attribute is a callable that accepts anything and returns another such object, so
``plt.ion()``, ``plt.subplots()``, ``ax.plot(...)``, ``plt.pause(0.1)`` and ``plt.savefig(...)``
all run without drawing (or sleeping). Training is unaffected: nothing here touches torch.
"""

from __future__ import annotations

import sys
import types
from typing import Any

__all__ = ["Anything", "anything_attr", "use"]
__version__ = "0.0-stub"


class Anything:
    """Callable, indexable, iterable as a pair, usable as a context manager: always itself.

    Usable as a base class too (``class Arrow3D(FancyArrowPatch)``): the subclass derives from ``Anything``.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def __mro_entries__(self, bases: tuple[Any, ...]) -> tuple[type, ...]:
        return (Anything,)

    def __call__(self, *args: Any, **kwargs: Any) -> Anything:
        return self

    def __getattr__(self, name: str) -> Anything:
        if name.startswith("__"):
            raise AttributeError(name)
        return self

    def __getitem__(self, key: Any) -> Anything:
        return self

    def __iter__(self):  # fig, ax = plt.subplots()
        return iter((self, self))

    def __enter__(self) -> Anything:
        return self

    def __exit__(self, *exc: Any) -> None:
        return None

    def __add__(self, other: Any) -> Anything:  # a transform chain: Affine2D().rotate_deg_around(...) + ax.transData
        return self

    __radd__ = __mul__ = __rmul__ = __add__


def anything_attr(name: str) -> Any:
    """A module-level ``__getattr__`` for the other do-nothing stand-ins (seaborn, IPython): every public
    name is an ``Anything``."""
    if name.startswith("__"):
        raise AttributeError(name)
    return Anything()


def use(*args: Any, **kwargs: Any) -> None:
    """``matplotlib.use('agg')``: nothing to choose."""


class _StubModule(types.ModuleType):
    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return Anything()


def _install(name: str) -> None:
    mod = _StubModule(name)
    sys.modules[name] = mod
    parent, _, child = name.rpartition(".")
    setattr(sys.modules[parent], child, mod)


for _name in ("pyplot", "animation", "axes", "cm", "collections", "colors", "figure", "gridspec", "lines", "patches",
              "ticker", "transforms", "style"):
    _install(f"{__name__}.{_name}")
