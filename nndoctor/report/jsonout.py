"""JSON output (``"schema": 1``), for CI and other tools."""

from __future__ import annotations

import json
import os

from nndoctor.findings import Report

__all__ = ["dump_json", "to_json"]


def to_json(report: Report) -> str:
    return json.dumps(report.to_dict(), indent=2, sort_keys=False, allow_nan=False)


def dump_json(report: Report, path: str) -> None:
    """Write the report to ``path`` (``-`` for standard output)."""
    text = to_json(report) + "\n"
    if path == "-":
        import sys

        sys.stdout.write(text)
        return
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    tmp = f"{path}.tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.replace(tmp, path)
