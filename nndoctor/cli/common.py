"""Helpers the command modules share: loading an experiment file, the JSON writer, progress bars,
running the user's code, and the one number format of every terminal rendering."""

from __future__ import annotations

import argparse
import json
import math
from typing import TYPE_CHECKING, Any, Callable, Sequence

from rich.console import Console
from rich.markup import escape

from nndoctor.cli.options import UsageError, add_fail_on

if TYPE_CHECKING:  # rich.progress is imported by the commands that show a bar (not by ``run``)
    from rich.progress import Progress

__all__ = ["add_experiment_args", "fmt_num", "json_output", "json_text", "load", "progress", "render",
           "run_guarded", "sparkline", "write_json", "write_report"]

_BARS = "▁▂▃▄▅▆▇█"


def fmt_num(value: Any, spec: str = ".4g", missing: str = "-") -> str:
    """A number for a table or a line: floats with ``spec``, ``None`` as ``missing``, others as ``str``."""
    if value is None:
        return missing
    if isinstance(value, float):
        return format(value, spec)
    return str(value)


def sparkline(values: Sequence[float], width: int = 60, log: bool = False) -> str:
    """A one-line chart; non-finite values show as ``×``."""
    vals = [float(v) for v in values]
    if not vals:
        return ""
    if len(vals) > width:
        step = len(vals) / width
        buckets = [vals[int(i * step): max(int(i * step) + 1, int((i + 1) * step))] for i in range(width)]
        vals = [math.inf if any(not math.isfinite(v) for v in b) else sum(b) / len(b) for b in buckets]
    tf = [(math.log10(v) if v > 0 else -12.0) if log and math.isfinite(v) else v for v in vals]
    finite = [v for v in tf if math.isfinite(v)]
    if not finite:
        return "×" * len(tf)
    lo, hi = min(finite), max(finite)
    span = hi - lo or 1.0
    return "".join("×" if not math.isfinite(v) else _BARS[min(7, int((v - lo) / span * 7.999))] for v in tf)


def add_experiment_args(p: argparse.ArgumentParser, *, fail_on: bool = False, json_help: str | None = None,
                        experiment_help: str | None = None, set_help: str | None = None) -> None:
    """``EXP``, ``--set NAME=VALUE`` and ``--json PATH`` (and ``--fail-on``) of the experiment commands."""
    p.add_argument("experiment", help=experiment_help or "experiment file defining experiment(...) -> "
                   "nndoctor.Experiment")
    p.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                   help=set_help or "override a hyperparameter")
    p.add_argument("--json", metavar="PATH", help=json_help or "write the result as JSON")
    if fail_on:
        add_fail_on(p)


def load(ns: argparse.Namespace) -> tuple[Any, dict[str, Any]]:
    """Check ``--json``, then load ``ns.experiment`` with ``--set``: (experiment, the overrides).

    A loading problem is a :class:`UsageError`."""
    from nndoctor.experiment import ExperimentError, load_experiment, parse_sets
    from nndoctor.report.output import check_outputs

    check_outputs({"--json": ns.json})
    try:
        sets = parse_sets(ns.set)
        return load_experiment(ns.experiment, sets), sets
    except ExperimentError as exc:
        raise UsageError(str(exc)) from None


def run_guarded(fn: Callable[[], Any]) -> Any:
    """Run a workflow; an error from the user's code becomes one usage line."""
    from nndoctor.experiment import ExperimentError

    try:
        return fn()
    except ExperimentError as exc:
        raise UsageError(str(exc)) from None
    except (RuntimeError, ValueError, TypeError, IndexError) as exc:
        raise UsageError(f"the experiment failed while running: {type(exc).__name__}: {exc}") from None


def progress(console: Console, label: str | None = None, *, counts: bool = False, transient: bool = True) -> Progress:
    """A progress bar on ``console``: a bold fixed ``label`` then the task's description, or (no label)
    the task's description then its ``info`` field; ``counts`` adds "done/total"."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        ProgressColumn,
        TextColumn,
        TimeElapsedColumn,
    )

    columns: list[ProgressColumn] = [TextColumn(f"[bold]{escape(label)}" if label else "{task.description}"),
                                     BarColumn()]
    if counts:
        columns.append(MofNCompleteColumn())
    columns += [TextColumn("{task.description}" if label else "{task.fields[info]}"), TimeElapsedColumn()]
    return Progress(*columns, console=console, transient=transient)


def render(report: Any, console: Console, title: str) -> None:
    """The findings of ``report`` on the terminal."""
    from nndoctor.report.terminal import render_report

    render_report(report, console, title=title)


def json_text(payload: Any) -> str:
    """The one JSON encoding of every command: strict JSON (non-finite numbers as strings), indent 2."""
    from nndoctor.findings import _jsonable

    return json.dumps(_jsonable(payload), indent=2, allow_nan=False) + "\n"


def json_output(option: str, path: str | None, payload: Any | Callable[[], Any]) -> tuple[str, str | None,
                                                                                          Callable[[], str]]:
    """An output for :func:`nndoctor.report.output.write_outputs`: ``payload`` (or a function making it)
    as JSON."""
    return option, path, lambda: json_text(payload() if callable(payload) else payload)


def write_report(report: Any, json_path: str | None, html_path: str | None, *, title: str | None = None) -> list[str]:
    """Write a Report as ``--json`` and ``--html`` (either may be None); a failure is one line. Returns the
    options that could not be written."""
    from nndoctor.report.output import write_outputs

    def html() -> str:  # (the HTML renderer is imported only when a page is written)
        from nndoctor.report.html import render_html

        return render_html(report, title=title)

    return write_outputs([json_output("--json", json_path, report.to_dict), ("--html", html_path, html)])


def write_json(path: str | None, payload: Any, option: str = "--json") -> list[str]:
    """Write ``payload`` as JSON to ``path`` (``-``: standard output; ``None``: nothing); a failure is one
    line. Returns the options that could not be written."""
    from nndoctor.report.output import write_outputs

    return write_outputs([json_output(option, path, payload)])
