"""JSON output (``"schema_version": 2``, docs/report-schema.md), for CI and other tools."""

from __future__ import annotations

import json

from nndoctor.findings import Report
from nndoctor.report.output import write_text

__all__ = ["dump_json", "to_json"]


def to_json(report: Report) -> str:
    return json.dumps(report.to_dict(), indent=2, sort_keys=False, allow_nan=False)


def dump_json(report: Report, path: str) -> None:
    """Write the report to ``path`` (``-`` for standard output), atomically."""
    write_text(path, to_json(report) + "\n")
