"""Terminal rendering with rich: one live line per new finding, a summary at the end."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from nndoctor.findings import Finding, Report, Severity

__all__ = ["finding_line", "render_report"]

_STYLE = {Severity.ERROR: "bold red", Severity.WARNING: "yellow", Severity.INFO: "cyan"}


def _where(f: Finding) -> str:
    parts = []
    if f.location:
        parts.append(f.location)
    if f.first_step is not None:
        parts.append(f"step {f.first_step}")
    return ", ".join(parts)


def finding_line(f: Finding) -> Text:
    """One line for a finding as soon as it is seen."""
    text = Text("nndoctor ")
    text.append(f"{f.severity.value:<7}", style=_STYLE[f.severity])
    text.append(f" {f.code}", style="bold")
    where = _where(f)
    if where:
        text.append(f" [{where}]", style="dim")
    text.append(f": {f.message}")
    return text


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (list, tuple)) and len(value) > 8:
        return "[" + ", ".join(_fmt(v) for v in value[:8]) + ", ...]"
    return str(value)


def _causes(f: Finding) -> str:
    """``caused_by`` as text: ``lr.too-high (opt), preprocessing.unnormalised-pixels (model)``."""
    return ", ".join(f"{code} ({loc})" if loc else code for code, loc in f.caused_by)


def render_report(report: Report, console: Console | None = None, *, title: str = "nndoctor report") -> None:
    """Print the summary table, then each warning/error with evidence and fixes."""
    console = console or Console(stderr=True)
    facts = report.facts
    console.rule(f"[bold]{escape(title)}")
    bits = []
    if "steps" in facts:
        bits.append(f"{facts['steps']} optimizer steps")
    if facts.get("models"):
        bits.append("models: " + ", ".join(f"{m['name']} ({m['class']}, {m['parameters']:,} params)"
                                            for m in facts["models"]))
    if facts.get("optimizers"):
        bits.append("optimizers: " + ", ".join(f"{o['name']} ({o['class']}, lr={_fmt(o['lr'])})"
                                                for o in facts["optimizers"]))
    if "duration_s" in facts:
        bits.append(f"{facts['duration_s']:.1f}s")
    if bits:
        console.print(escape(" | ".join(bits)), style="dim")
    groups = report.groups()
    if not groups:
        console.print("[green]No problems found.[/green]")
    else:
        table = Table(show_lines=False, expand=False)
        for col in ("severity", "code", "where", "seen"):
            table.add_column(col, overflow="fold")
        for root, symptoms in groups:             # the headline root cause first, symptoms under their cause
            for f in (root, *symptoms):
                table.add_row(Text(f.severity.value, style=_STYLE[f.severity]),  # Text: no markup
                              Text(f.code if f is root else f"  - {f.code}"), Text(_where(f)), f"{f.count}x")
        console.print(table)
        for i, (root, symptoms) in enumerate(groups):
            for j, f in enumerate((root, *symptoms)):
                pad = "   " if f is root else "      "
                label = f"{i + 1}. {f.code}" if f is root else f"   {i + 1}.{j} {f.code}"
                console.print(Text(label, style=_STYLE[f.severity]).append(f"  {_where(f)}", style="dim"))
                if f.caused_by:
                    console.print(f"{pad}[dim]symptom of:[/dim] {escape(_causes(f))}")
                console.print(f"{pad}{escape(f.message)}")
                if f.evidence:
                    ev = ", ".join(f"{k}={_fmt(v)}" for k, v in f.evidence.items())
                    console.print(f"{pad}[dim]evidence:[/dim] {escape(ev)}")
                for k, fix in enumerate(f.fixes):
                    console.print(f"{pad}[green]fix {k + 1}:[/green] {escape(fix)}")
                console.print(f"{pad}[dim]explain: nndoctor explain {escape(f.code)}[/dim]")
    for err in report.internal_errors:
        console.print(f"[cyan]info[/cyan] nndoctor internal error in probe {escape(err.probe)} "
                      f"(switched off, your training was not affected): {escape(err.error)}")
