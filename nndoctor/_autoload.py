"""Import every module of a package so that its checks register themselves."""

from __future__ import annotations

import importlib
import pkgutil

__all__ = ["import_submodules"]


def import_submodules(package_name: str, package_path: list[str]) -> list[str]:
    names = []
    for info in pkgutil.iter_modules(package_path):
        if info.name.startswith("_"):
            continue
        importlib.import_module(f"{package_name}.{info.name}")
        names.append(info.name)
    return names
