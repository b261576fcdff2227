"""scikit-learn's regression metrics, seen while a run is observed (see :mod:`nndoctor.monitor.outside`).

``mean_squared_error(y_val, model(X_val).detach().numpy())`` compares a prediction with a target
outside torch: torch sees the forward only. While an observer runs, the regression metrics of
``sklearn.metrics`` are wrapped: each call runs the original unchanged and returns its result, then
hands its ``y_true`` / ``y_pred`` to the observers (``Observer._on_metric``), which keep them only after
a forward that no backward followed (an evaluation). ``sklearn.metrics`` is patched when it is
imported (a ``sys.meta_path`` finder, so ``from sklearn.metrics import r2_score`` in the script binds
the wrapper) or at once if it already was; on exit the module's attributes are restored. A wrapper the
script bound before the exit passes straight through afterwards. A fault of nndoctor's in a wrapper
switches the observer off, never the call.
"""

from __future__ import annotations

import functools
import importlib.abc
import importlib.machinery
import sys
from types import ModuleType
from typing import Any, Callable

from nndoctor.monitor import compat

__all__ = ["IN_CALL", "METRICS", "install", "uninstall"]

#: regression metrics of ``sklearn.metrics`` whose first two arguments are (y_true, y_pred)
METRICS = ("mean_squared_error", "mean_absolute_error", "root_mean_squared_error", "r2_score",
           "explained_variance_score", "median_absolute_error", "max_error")
#: depth of metric calls under way (their own conversions of tensors are not counted twice)
IN_CALL = [0]
_MODULE = "sklearn.metrics"
_USERS = [0]  # observers that installed the patch


def _wrap(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def metric(*args: Any, **kwargs: Any) -> Any:
        IN_CALL[0] += 1
        try:
            result = original(*args, **kwargs)
        finally:
            IN_CALL[0] -= 1
        if compat._ACTIVE and not IN_CALL[0]:
            y_true = args[0] if args else kwargs.get("y_true")
            y_pred = args[1] if len(args) > 1 else kwargs.get("y_pred")
            for obs in list(compat._ACTIVE):
                try:
                    obs._on_metric(y_true, y_pred)
                except Exception as exc:  # nndoctor's fault: the observer stops, the call's result stands
                    obs._fail("metric call", exc)
        return result

    metric.__nndoctor_original__ = original  # type: ignore[attr-defined]
    return metric


def _patch(module: ModuleType) -> None:
    for name in METRICS:
        fn = getattr(module, name, None)
        if callable(fn) and not hasattr(fn, "__nndoctor_original__"):
            setattr(module, name, _wrap(fn))


def _unpatch(module: ModuleType) -> None:
    for name in METRICS:
        original = getattr(getattr(module, name, None), "__nndoctor_original__", None)
        if original is not None:
            setattr(module, name, original)


class _Loader(importlib.abc.Loader):
    """The real loader of ``sklearn.metrics``, patching the module once it has run."""

    def __init__(self, real: Any) -> None:
        self.real = real

    def create_module(self, spec: Any) -> Any:
        return self.real.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        self.real.exec_module(module)
        try:
            if _USERS[0]:
                _patch(module)
        except Exception:  # noqa: BLE001 - never in the way of the user's import
            pass


class _Finder(importlib.abc.MetaPathFinder):
    def find_spec(self, name: str, path: Any, target: Any = None) -> Any:
        if name != _MODULE or not _USERS[0]:
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return None
        spec.loader = _Loader(spec.loader)
        return spec


_FINDER = _Finder()


def install() -> None:
    """Patch ``sklearn.metrics`` now if imported, else when it is."""
    _USERS[0] += 1
    if _FINDER not in sys.meta_path:
        sys.meta_path.insert(0, _FINDER)
    module = sys.modules.get(_MODULE)
    if module is not None:
        _patch(module)


def uninstall() -> None:
    """Undo :func:`install` once its last user is done."""
    _USERS[0] = max(0, _USERS[0] - 1)
    if _USERS[0]:
        return
    if _FINDER in sys.meta_path:
        sys.meta_path.remove(_FINDER)
    module = sys.modules.get(_MODULE)
    if module is not None:
        _unpatch(module)
