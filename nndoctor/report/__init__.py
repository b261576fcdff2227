"""Renderers: they only read :class:`~nndoctor.findings.Report` objects."""

from __future__ import annotations

import importlib

__all__ = ["dump_json", "finding_line", "render_report", "to_json"]

#: names -> their module, imported on first use (``nndoctor.report.sections``, which a run imports,
#: then does not pull in the terminal renderer and rich)
_LAZY = {"dump_json": "jsonout", "to_json": "jsonout", "finding_line": "terminal", "render_report": "terminal"}


def __getattr__(name: str) -> object:
    if name in _LAZY:
        return getattr(importlib.import_module(f"nndoctor.report.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'nndoctor.report' has no attribute {name!r}")
