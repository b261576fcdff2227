"""Stand-ins for optional packages that are not installed here, found only when a script imports them.

``torch.utils.tensorboard`` needs the ``tensorboard`` package (and ``tensorboardX`` is not
installed): a script that logs with ``SummaryWriter`` gets a writer that records nothing. A meta-path finder serves it on import,
so nothing (torch included) is imported at interpreter start.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import sys
import types
from typing import Any

__all__ = ["SummaryWriter"]


class SummaryWriter:
    """Accepts every ``add_*`` / ``flush`` / ``close`` call and writes nothing."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return lambda *a, **k: None

    def __enter__(self) -> SummaryWriter:
        return self

    def __exit__(self, *exc: Any) -> None:
        return None


class _Finder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    names = frozenset({"torch.utils.tensorboard", "tensorboardX"})

    def find_spec(self, fullname: str, path: Any, target: Any = None) -> importlib.machinery.ModuleSpec | None:
        if fullname in self.names:
            return importlib.machinery.ModuleSpec(fullname, self)
        return None

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType:
        mod = types.ModuleType(spec.name)
        mod.SummaryWriter = SummaryWriter  # type: ignore[attr-defined]
        return mod

    def exec_module(self, module: types.ModuleType) -> None:
        return None


sys.meta_path.insert(0, _Finder())
