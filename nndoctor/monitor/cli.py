"""``nndoctor run SCRIPT [args...]``: diagnose an unchanged training script."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from rich.console import Console

from nndoctor.findings import Report, Severity
from nndoctor.monitor.runner import ScriptError, run_script
from nndoctor.monitor.sampling import Schedule

__all__ = ["gate_exit", "register", "split_run_args"]

#: nndoctor's own options, also recognised after the script name; value-taking ones map to True
RUN_OPTIONS = {
    "--max-steps": True,
    "--json": True,
    "--html": True,
    "--fail-on": True,
    "--sample-every": True,
    "--dense-steps": True,
    "--quiet": False,
}


def register(sub: Any) -> None:
    p = sub.add_parser(
        "run",
        help="run a training script unchanged and diagnose it",
        description=(
            "Run SCRIPT as __main__ with the given arguments, observe training through "
            "PyTorch's global hooks, and report what goes wrong. nndoctor's own options may "
            "come before or after the script; put '--' before script arguments that share "
            "a name with one of them."
        ),
    )
    _add_options(p)
    p.add_argument("script", help="the training script, e.g. train.py")
    p.add_argument("args", nargs=argparse.REMAINDER, help="arguments passed to the script")
    p.set_defaults(func=cmd_run)


def _add_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--max-steps", type=_positive_int, metavar="N",
                   help="stop the script cleanly after N optimizer steps, then report")
    p.add_argument("--json", metavar="PATH", help="write the findings as JSON (schema 1) to PATH ('-' for stdout)")
    p.add_argument("--html", metavar="PATH", help="write a self-contained HTML report to PATH")
    p.add_argument("--fail-on", choices=["error", "warning", "info"],
                   help="exit 1 when a finding of this severity or worse was found")
    p.add_argument("--sample-every", type=_positive_int, default=50, metavar="N",
                   help="look closely at one step in N after the first ones (default 50)")
    p.add_argument("--dense-steps", type=_nonneg_int, default=8, metavar="N",
                   help="look closely at every one of the first N steps (default 8)")
    p.add_argument("--quiet", action="store_true", help="no live finding lines, only the summary")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a number >= 1, got {text!r}")
    return value


def _nonneg_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text!r}")
    return value


def split_run_args(args: list[str]) -> tuple[list[str], list[str]]:
    """Split what follows the script name into nndoctor's options and the script's own."""
    ours: list[str] = []
    theirs: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--":
            theirs.extend(args[i + 1:])
            break
        name = arg.split("=", 1)[0]
        if name in RUN_OPTIONS:
            ours.append(arg)
            if RUN_OPTIONS[name] and "=" not in arg:
                if i + 1 < len(args):
                    ours.append(args[i + 1])
                i += 1
        else:
            theirs.append(arg)
        i += 1
    return ours, theirs


def gate_exit(report: Report, fail_on: str | None, default: int) -> int:
    """Exit code: the script's own, or 1 when ``--fail-on`` finds something."""
    if fail_on and report.at_least(Severity.parse(fail_on)):
        return default if default not in (0,) else 1
    return default


def cmd_run(ns: argparse.Namespace) -> int:
    from nndoctor.cli import UsageError, build_parser

    ours, script_args = split_run_args(list(ns.args))
    if ours:
        parser = build_parser()
        # re-parse nndoctor's options found after the script name
        ns2 = parser.parse_args(["run", *ours, ns.script])
        for key in ("max_steps", "json", "html", "fail_on", "quiet"):
            if getattr(ns2, key) not in (None, False):
                setattr(ns, key, getattr(ns2, key))
        for key, default in (("sample_every", 50), ("dense_steps", 8)):
            if getattr(ns2, key) != default:
                setattr(ns, key, getattr(ns2, key))
    console = Console(stderr=True)
    from nndoctor.report.terminal import finding_line, render_report

    def live(finding: Any) -> None:
        if not ns.quiet:
            console.print(finding_line(finding))

    try:
        result = run_script(ns.script, script_args, max_steps=ns.max_steps,
                            schedule=Schedule(dense=ns.dense_steps, every=ns.sample_every),
                            on_finding=live)
    except ScriptError as exc:
        raise UsageError(str(exc)) from None
    sys.stdout.flush()
    report = result.report
    if result.traceback_text:
        console.print("[bold]The script crashed; its traceback:[/bold]")
        sys.stderr.write(result.traceback_text)
    render_report(report, console, title=f"nndoctor: {os.path.basename(ns.script)}")
    if not report.facts.get("steps") and not report.facts.get("backward_calls") and not report.facts.get("models"):
        console.print(f"nndoctor: no model was trained by {ns.script} "
                      "(no forward pass of a module, backward pass or optimizer step was seen)")
    if ns.json:
        from nndoctor.report.jsonout import dump_json

        dump_json(report, ns.json)
    if ns.html:
        try:
            from nndoctor.report.html import write_html  # type: ignore[attr-defined]
        except ImportError:
            console.print("nndoctor: the HTML report is not available in this version")
        else:
            write_html(report, ns.html)
    return gate_exit(report, ns.fail_on, result.exit_code)
