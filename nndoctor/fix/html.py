"""The ``nndoctor fix`` table as a self-contained HTML page, each remedy's training-loss curve
drawn over the diagnosis run's."""

from __future__ import annotations

import math
from html import escape

from nndoctor.fix.metrics import script_yardstick
from nndoctor.fix.session import Attempt, FixSession
from nndoctor.report.svg import line_chart

__all__ = ["render_fix_html"]

_CSS = """body{font:14px/1.45 system-ui,sans-serif;margin:0;color:#1d232a;background:#f6f7f9}
main{max-width:1000px;margin:auto;padding:16px}table{border-collapse:collapse;width:100%;background:#fff}
td,th{border:1px solid #d9dde3;padding:6px 8px;text-align:left;vertical-align:top;overflow-wrap:anywhere}
.verified{color:#17803d;font-weight:600}.worse,.failed{color:#b42318;font-weight:600}.no-effect{color:#8a6100}
.chart{width:100%;max-width:640px;background:#fff}.frame{fill:none;stroke:#c8ced6}.grid{stroke:#eef0f3}
.tick,.ct{font-size:11px;fill:#555}.muted{color:#667}section{margin:18px 0}code{background:#eef0f3;padding:1px 4px}
pre.diff{background:#f3f5f7;padding:6px;overflow-x:auto;font-size:12px}
@media (max-width:600px){td,th{padding:4px;font-size:12px}}"""


def _n(v: float | None) -> str:
    if v is None:
        return "-"
    return str(v) if not math.isfinite(v) else f"{v:.4g}"


def _edit_cell(a: Attempt) -> str:
    if a.verdict.verdict != "verified":
        return escape(a.verdict.reason or a.description)
    if a.source is None:
        return escape(a.edit)
    diff = f'<pre class="diff">{escape(a.source.diff)}</pre>' if a.source.diff else ""
    return escape(a.source.text()) + diff


def render_fix_html(session: FixSession) -> str:
    before = session.before.figures if session.before else None
    attempts = session.attempts + ([session.combined] if session.combined else [])
    metric = script_yardstick(before.script) if before else None
    rows, charts = [], []
    for a in attempts:
        loc = a.findings[0].get("location", "")
        rows.append(
            "<tr>" + "".join(f"<td>{c}</td>" for c in (
                escape(a.findings[0]["code"] + (f" [{loc}]" if loc else "")), escape(a.remedy),
                f"{_n(before.train_loss)} &rarr; {_n(a.after.train_loss)}" if before else "-",
                f"{_n(before.eval_loss)} &rarr; {_n(a.after.eval_loss)}" if before else "-",
                f"{_n(before.script.get(metric))} &rarr; {_n(a.after.script.get(metric))}" if before and metric else "-",
                f'<span class="{escape(a.verdict.verdict)}">{escape(a.verdict.verdict)}</span>',
                _edit_cell(a),
            )) + "</tr>")
        if before and before.curve and a.after.curve:
            charts.append(line_chart({"before": (before.curve_steps, before.curve),
                                      f"with {a.remedy}": (a.after.curve_steps, a.after.curve)},
                                     title=f"training loss: before and with {a.remedy}", y_label="loss"))
    head = ("<tr>" + "".join(f"<th>{escape(h)}</th>" for h in (
        "finding", "remedy", "train loss", "eval loss", metric or "script metric", "verdict", "edit")) + "</tr>")
    body = (f"<table>{head}{''.join(rows)}</table>" if rows else
            '<p class="muted">No root-cause finding with a runtime remedy: nothing to try.</p>')
    name = escape(session.script.rsplit("/", 1)[-1])
    note = " (interrupted: the remedies tried so far)" if session.interrupted else ""
    return (f'<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" '
            f'content="width=device-width,initial-scale=1"><title>nndoctor fix: {name}</title><style>{_CSS}'
            f"</style></head><body><main><h1>nndoctor fix: {name}</h1><p class=\"muted\">{len(attempts)} remedies "
            f"tried{note}; each in its own re-run of the unchanged script.</p><section>{body}</section>"
            f"<section>{''.join(charts)}</section></main></body></html>")


