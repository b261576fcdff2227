"""``nndoctor fix SCRIPT [args]``: try each diagnosed root cause's remedy in a re-run, show
before and after, and say which ones are verified."""

from __future__ import annotations

import argparse
import os
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from nndoctor.cli.common import fmt_num, json_output
from nndoctor.cli.options import UsageError, positive_int
from nndoctor.fix.metrics import script_yardstick
from nndoctor.fix.session import Attempt, FixSession, run_fix

if TYPE_CHECKING:
    from nndoctor.fix.experiment import ExperimentFix

__all__ = ["register", "render", "render_experiment_fix"]

_STYLE = {"verified": "bold green", "no-effect": "yellow", "worse": "bold red", "failed": "red", "symptom": "cyan"}


def register(sub: Any) -> None:
    p = sub.add_parser(
        "fix", help="try the remedy of each diagnosed root cause in a re-run and compare before/after",
        usage="nndoctor fix [OPTIONS] [--] SCRIPT [ARGS...]",
        description="Run SCRIPT once under nndoctor, then once more per root-cause finding that has a runtime "
                    "remedy (applied through hooks: the source is never edited), plus one run to measure "
                    "run-to-run noise. Shows before -> after for the training loss, the evaluation loss and "
                    "the script's own last printed metric, with a verdict: verified, no-effect, worse or "
                    "failed. nndoctor's options may come before or after the script, as with 'nndoctor run'; "
                    "everything after a '--' goes to the script unchanged ('nndoctor fix train.py --max-steps "
                    "300 -- --lr 0.1').")
    _add_options(p)
    p.add_argument("command_line", nargs=argparse.REMAINDER, metavar="SCRIPT [ARGS...]",
                   help="the training script, e.g. train.py, then its arguments")
    p.set_defaults(func=cmd_fix)


#: the options of ``fix``, also recognised after the script name; value-taking ones map to True
FIX_OPTIONS = {"--max-steps": True, "--json": True, "--html": True, "--timeout": True}


def _add_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--max-steps", type=positive_int, metavar="N", help="stop every run after N optimizer steps")
    p.add_argument("--json", metavar="PATH", help="write every remedy tried as JSON to PATH ('-' for stdout)")
    p.add_argument("--html", metavar="PATH", help="write the table and the loss curves as a self-contained HTML page")
    p.add_argument("--timeout", type=positive_int, metavar="S", help="give up on a run after S seconds")


def _command_line(ns: argparse.Namespace) -> list[str]:
    """Set ``ns.script`` and nndoctor's options found after it; return the script's arguments."""
    from nndoctor.cli.options import Parser
    from nndoctor.cli.run import split_command_line

    ns.script, ours, script_args = split_command_line(list(ns.command_line), FIX_OPTIONS, "fix")
    if ours:
        parser = Parser(prog="nndoctor fix")
        _add_options(parser)
        after = parser.parse_args(ours)
        for key in ("max_steps", "json", "html", "timeout"):
            if getattr(after, key) is not None:
                setattr(ns, key, getattr(after, key))
    return script_args


def _change(before: float | None, after: float | None) -> str:
    return f"{fmt_num(before)} -> {fmt_num(after)}"


def _diff_text(diff: str) -> Text:
    out = Text()
    for ln in diff.splitlines():
        style = "bold" if ln.startswith(("---", "+++")) else "green" if ln.startswith("+") else \
            "red" if ln.startswith("-") else "cyan" if ln.startswith("@@") else ""
        out.append(f"    {ln}\n", style=style)
    return out


def render(session: FixSession, console: Console) -> None:
    """The before/after table and the edits to make, from a finished (or interrupted) session."""
    if session.before is None:
        return
    before = session.before.figures
    attempts: list[Attempt] = session.attempts + ([session.combined] if session.combined else [])
    title = f"nndoctor fix: {os.path.basename(session.script)}"
    console.rule(Text(title, style="bold"))
    if not attempts:
        warn = [f for f in session.before.findings if f.get("severity") in ("warning", "error")]
        console.print("No root-cause finding with a runtime remedy: nothing to try." if warn
                      else "No problems found: nothing to fix.")
        _render_unremedied(session, console)
        return
    metric = script_yardstick(before.script)
    table = Table()
    for col in ("finding", "remedy", "train loss", "eval loss", metric or "script metric", "verdict"):
        table.add_column(col, overflow="fold")
    for a in attempts:
        where = a.findings[0].get("location", "")
        table.add_row(
            Text(a.findings[0]["code"] + (f" [{where}]" if where else "")),
            Text(a.remedy),
            _change(before.train_loss, a.after.train_loss),
            _change(before.eval_loss, a.after.eval_loss),
            _change(before.script.get(metric), a.after.script.get(metric)) if metric else "-",
            Text(a.verdict.verdict, style=_STYLE.get(a.verdict.verdict, "")),
        )
    console.print(table)
    for a in attempts:
        line = Text(f"{a.remedy}: ", style=_STYLE.get(a.verdict.verdict, ""))
        line.append(f"{a.description}. ")
        if a.verdict.verdict == "verified":
            line.append(f"Edit: {a.source.text() if a.source else a.edit}", style="green")
        elif a.verdict.reason:
            line.append(a.verdict.reason)
        console.print(line)
        if a.verdict.verdict == "verified" and a.source is not None and a.source.diff:
            console.print(_diff_text(a.source.diff))
    console.print(Text(f"{session.runs} runs, {session.seconds:.1f}s; the yardstick is {attempts[0].verdict.metric}, "
                       f"a change counts beyond {fmt_num(attempts[0].verdict.threshold)} (3x the run-to-run "
                       f"difference, at least 2%)", style="dim"))
    _render_unremedied(session, console)
    if session.interrupted:
        console.print("nndoctor fix: interrupted; the table shows the remedies tried so far")


def _render_unremedied(session: FixSession, console: Console) -> None:
    """Root causes no runtime remedy answers: said plainly, with the edit to make (not re-run)."""
    for u in session.unremedied:
        line = Text(f"{u['code']}" + (f" [{u['location']}]" if u["location"] else ""), style="bold")
        where = f"{u['file']}:{u['line']}" if u.get("file") and u.get("line") else "the source"
        line.append(f": no runtime remedy: edit {where}", style="bold")
        if u.get("source_line"):
            line.append(f" ({u['source_line']})")
        line.append(" (nndoctor cannot change this through hooks; nothing was re-run). ")
        line.append(str(u["edit"]), style="green")
        if u.get("message"):
            line.append(f" Evidence: {u['message']}", style="dim")
        console.print(line)


def cmd_fix(ns: argparse.Namespace) -> int:
    from nndoctor.monitor.runner import ScriptError, check_script
    from nndoctor.report.output import check_outputs, write_outputs
    from nndoctor.signals import interrupt_exit_code, terminate_as_interrupt

    args = _command_line(ns)
    try:
        check_script(ns.script)
    except ScriptError as exc:
        raise UsageError(str(exc)) from None
    check_outputs({"--json": ns.json, "--html": ns.html})
    console = Console(stderr=True)
    console.print(Text("nndoctor fix: the script runs once to diagnose, then once per remedy and once to measure "
                       "noise; its source is never edited", style="dim"))
    with terminate_as_interrupt():
        session = run_fix(ns.script, args, max_steps=ns.max_steps, timeout=ns.timeout,
                          progress=lambda msg: console.print(Text(f"nndoctor fix: {msg}", style="dim")))
    if session.before is None or session.before.result.get("report") is None:
        if session.interrupt is not None:
            console.print("nndoctor fix: interrupted during the diagnosis run; nothing was tried")
            return interrupt_exit_code(session.interrupt)
        raise UsageError(f"the diagnosis run of {ns.script} did not finish ({session.before.error})")
    render(session, console)

    def page() -> str:
        from nndoctor.fix.html import render_fix_html

        return render_fix_html(session)

    write_outputs([json_output("--json", ns.json, session.to_dict),
                   ("--html", ns.html, page)])
    return interrupt_exit_code(session.interrupt) if session.interrupt is not None else 0


def render_experiment_fix(fix: ExperimentFix, console: Any) -> None:
    """The before -> after table of ``diagnose --fix``."""
    if not fix.attempts:
        console.print("fix: no root-cause finding with a remedy: nothing to try.")
        return
    table = Table(title=f"fix: {fix.metric} before -> after (noise run {_change(fix.before, fix.repeat)})")
    for col in ("finding", "remedy", "how", fix.metric, "verdict"):
        table.add_column(col, overflow="fold")
    for a in fix.attempts:
        where = a.findings[0].get("location", "")
        table.add_row(a.findings[0]["code"] + (f" [{where}]" if where else ""), a.remedy, a.how,
                      _change(fix.before, a.after), Text(a.verdict.verdict, style=_STYLE.get(a.verdict.verdict, "")))
    console.print(table)
    for a in fix.attempts:
        if a.verdict.verdict == "verified":
            console.print(Text(f"{a.remedy}: Edit: {a.edit}", style="green"))
