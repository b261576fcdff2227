"""Renderers: they only read :class:`~nndoctor.findings.Report` objects."""

from __future__ import annotations

from nndoctor.report.jsonout import dump_json, to_json
from nndoctor.report.terminal import finding_line, render_report

__all__ = ["dump_json", "finding_line", "render_report", "to_json"]
