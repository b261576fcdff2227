"""``nndoctor run SCRIPT [args...]``: diagnose an unchanged training script."""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Any

from rich.console import Console
from rich.text import Text

from nndoctor.cli.common import write_report
from nndoctor.cli.options import (
    SEPARATOR,
    Parser,
    UsageError,
    add_fail_on,
    fail_on_exit,
    nonneg_int,
    positive_int,
)
from nndoctor.monitor.runner import ScriptError, run_script
from nndoctor.monitor.sampling import Schedule

__all__ = ["register", "split_command_line", "split_run_args"]

#: nndoctor's own options, also recognised after the script name; value-taking ones map to True
RUN_OPTIONS = {
    "--max-steps": True,
    "--json": True,
    "--html": True,
    "--fail-on": True,
    "--sample-every": True,
    "--dense-steps": True,
    "--quiet": False,
    "--nproc": True,
}


def register(sub: Any) -> None:
    p = sub.add_parser(
        "run",
        help="run a training script unchanged and diagnose it",
        usage="nndoctor run [OPTIONS] [--] SCRIPT [ARGS...]",
        description=(
            "Run SCRIPT as __main__ with the given arguments, observe training through "
            "PyTorch's global hooks, and report what goes wrong. nndoctor's own options may "
            "come before or after the script. Everything after a '--' goes to the script "
            "unchanged: 'nndoctor run train.py --max-steps 50 -- --lr 0.1' gives the script "
            "'--lr 0.1', 'nndoctor run train.py -- --max-steps 5' gives it '--max-steps 5', and "
            "'nndoctor run --json r.json -- train.py --json x' gives it '--json x' (a '--' before "
            "the script ends nndoctor's options). Output paths are checked before the script starts; "
            "Ctrl-C or SIGTERM stops the run with the summary and reports written (exit 130 or 143)."
        ),
    )
    _add_options(p)
    p.add_argument("command_line", nargs=argparse.REMAINDER, metavar="SCRIPT [ARGS...]",
                   help="the training script, e.g. train.py, then its arguments")
    p.set_defaults(func=cmd_run)


def _add_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--max-steps", type=positive_int, metavar="N",
                   help="stop the script cleanly after N optimizer steps, then report")
    p.add_argument("--json", metavar="PATH", help="write the findings as JSON (schema 1) to PATH ('-' for stdout)")
    p.add_argument("--html", metavar="PATH", help="write a self-contained HTML report to PATH")
    add_fail_on(p, "exit 1 when a finding of this severity or worse was found")
    p.add_argument("--sample-every", type=positive_int, default=50, metavar="N",
                   help="look closely at one step in N after the first ones (default 50)")
    p.add_argument("--dense-steps", type=nonneg_int, default=8, metavar="N",
                   help="look closely at every one of the first N steps (default 8)")
    p.add_argument("--quiet", action="store_true", help="no live finding lines, only the summary")
    p.add_argument("--nproc", type=positive_int, metavar="N",
                   help="data-parallel: launch N ranks with torch.distributed.run on this machine and merge "
                        "their findings (under your own torchrun, leave it out: every rank is observed)")


def split_run_args(args: list[str], options: dict[str, bool] = RUN_OPTIONS) -> tuple[list[str], list[str]]:
    """Split what follows the script name into nndoctor's options (``options``: name -> takes a
    value) and the script's own.

    The first ``--`` (or :data:`nndoctor.cli.options.SEPARATOR`, its stand-in) ends nndoctor's options;
    whatever follows it goes to the script unchanged.
    """
    ours: list[str] = []
    theirs: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        if arg in ("--", SEPARATOR):
            theirs.extend("--" if a == SEPARATOR else a for a in args[i + 1:])
            break
        name = arg.split("=", 1)[0]
        if name in options:
            ours.append(arg)
            if options[name] and "=" not in arg:
                if i + 1 < len(args):
                    ours.append(args[i + 1])
                i += 1
        else:
            theirs.append(arg)
        i += 1
    return ours, theirs


def split_command_line(tokens: list[str], options: dict[str, bool] = RUN_OPTIONS,
                       command: str = "run") -> tuple[str, list[str], list[str]]:
    """``[--] SCRIPT [ARGS...]`` -> (script, nndoctor's options after it, the script's arguments)."""
    if tokens and tokens[0] in ("--", SEPARATOR):  # '--' before the script: the rest is the script's
        rest = ["--" if a == SEPARATOR else a for a in tokens[1:]]
        if not rest:
            raise UsageError(f"give the training script after '--': nndoctor {command} [OPTIONS] -- SCRIPT [ARGS...]")
        return rest[0], [], rest[1:]
    if not tokens:
        raise UsageError(f"give the training script: nndoctor {command} [OPTIONS] SCRIPT [ARGS...] "
                         f"(see 'nndoctor {command} --help')")
    ours, theirs = split_run_args(tokens[1:], options)
    return tokens[0], ours, theirs


def _options_after_script(ns: argparse.Namespace, ours: list[str]) -> None:
    """Parse nndoctor's options found after the script name into ``ns``."""
    parser = Parser(prog="nndoctor run")
    _add_options(parser)
    ns2 = parser.parse_args(ours)
    for key in ("max_steps", "json", "html", "fail_on", "quiet", "nproc"):
        if getattr(ns2, key) not in (None, False):
            setattr(ns, key, getattr(ns2, key))
    for key, default in (("sample_every", 50), ("dense_steps", 8)):
        if getattr(ns2, key) != default:
            setattr(ns, key, getattr(ns2, key))


def cmd_run(ns: argparse.Namespace) -> int:
    from nndoctor.report.output import check_outputs
    from nndoctor.signals import terminate_as_interrupt

    ns.script, ours, script_args = split_command_line(list(ns.command_line))
    if ours:
        _options_after_script(ns, ours)
    check_outputs({"--json": ns.json, "--html": ns.html})
    console = Console(stderr=True)
    from nndoctor.distributed.rankinfo import current_rank
    from nndoctor.report.terminal import finding_line, render_report

    rank = current_rank()
    if getattr(ns, "nproc", None) and rank is None:
        from nndoctor.cli.merge import run_nproc

        return run_nproc(ns, script_args, console)
    if rank is not None:  # this command writes the rank's result: nndoctor.watch() inside the script does not
        from nndoctor.distributed.session import claim_rank

        claim_rank("run")
    started = time.time()

    def live(finding: Any) -> None:
        if not ns.quiet and (rank is None or rank.is_main):  # only rank 0 prints
            console.print(finding_line(finding))

    def finish(result: Any) -> int:
        sys.stdout.flush()
        report = result.report
        if result.traceback_text:
            console.print("[bold]The script crashed; its traceback:[/bold]")
            sys.stderr.write(result.traceback_text)
        if rank is not None:
            from nndoctor.cli.merge import finish_run

            return finish_run(rank, result, ns, console, started)
        render_report(report, console, title=f"nndoctor: {os.path.basename(ns.script)}")
        if report.facts.get("end") == "interrupted":
            how = "Ctrl-C (SIGINT)" if report.facts.get("signal", "SIGINT") == "SIGINT" else report.facts["signal"]
            console.print(Text(f"nndoctor: the run was interrupted by {how} during step "
                               f"{report.facts.get('steps', 0) + 1}; this report covers what was seen until then",
                               style="bold yellow"))
        if not report.facts.get("steps") and not report.facts.get("backward_calls") and not report.facts.get("models"):
            console.print(Text(f"nndoctor: no model was trained by {ns.script} "
                               "(no forward pass of a module, backward pass or optimizer step was seen)"))
        write_report(report, ns.json, ns.html)
        return fail_on_exit(report, ns.fail_on, result.exit_code)

    try:
        with terminate_as_interrupt():
            result = run_script(ns.script, script_args, max_steps=ns.max_steps,
                                schedule=Schedule(dense=ns.dense_steps, every=ns.sample_every),
                                on_finding=live, on_hard_exit=finish)  # (a script ending with os._exit)
    except ScriptError as exc:
        raise UsageError(str(exc)) from None
    return finish(result)
