"""``nndoctor diagnose EXP``: the whole field-guide loop from one command (the pipeline is
:func:`nndoctor.diagnose.diagnose`), with an HTML report."""

from __future__ import annotations

import argparse
import os
from typing import Any

from rich.console import Console
from rich.markup import escape

from nndoctor.cli.common import write_report
from nndoctor.cli.options import UsageError, add_fail_on, fail_on_exit, nonneg_int, positive_int, rate

__all__ = ["register"]


def register(sub: Any) -> None:
    p = sub.add_parser("diagnose", help="the whole field-guide loop on an experiment file, with an HTML report",
                       description="``nndoctor diagnose EXP``: the whole field-guide loop from one command.")
    p.add_argument("experiment", help="experiment file defining experiment(...) -> nndoctor.Experiment")
    p.add_argument("--html", metavar="PATH", help="write the self-contained HTML report here")
    p.add_argument("--json", metavar="PATH", help="write everything as JSON (schema 1)")
    p.add_argument("--tune", type=nonneg_int, default=0, metavar="N",
                   help="tune with N trials at the end (default: no)")
    p.add_argument("--human-error", type=rate, default=0.0, metavar="E", help="irreducible error rate (default 0)")
    p.add_argument("--epochs", type=positive_int, default=None, metavar="N",
                   help="training epochs (default: experiment's)")
    p.add_argument("--set", action="append", default=[], metavar="NAME=VALUE", help="override a hyperparameter")
    add_fail_on(p)
    p.add_argument("--fix", action="store_true",
                   help="then try each root cause's remedy (a --set override, a module rewrite or a runtime hook) "
                        "in a fresh training run and say which ones are verified")
    p.set_defaults(func=cmd_diagnose)


def _fix(ns: argparse.Namespace, report: Any, console: Console) -> None:
    """``--fix``: the remedies' table, kept in the report's facts as ``fix``."""
    from nndoctor.cli.fix import render_experiment_fix
    from nndoctor.experiment import parse_sets
    from nndoctor.fix.experiment import fix_experiment
    from nndoctor.signals import terminate_as_interrupt

    hparams = report.facts.get("hyperparameters") or {}
    epochs = ns.epochs if ns.epochs is not None else int(hparams.get("epochs", 10))
    with terminate_as_interrupt():
        try:
            fixed = fix_experiment(ns.experiment, [f.to_dict() for f in report.sorted()],
                                   overrides=parse_sets(ns.set), epochs=epochs, hparams=hparams,
                                   progress=lambda msg: console.print(f"[dim]fix: {escape(msg)}[/dim]"))
        except KeyboardInterrupt:
            console.print("[bold yellow]interrupted[/bold yellow] while trying remedies")
            return
    render_experiment_fix(fixed, console)
    report.facts["fix"] = fixed.to_dict()


def cmd_diagnose(ns: argparse.Namespace) -> int:
    from nndoctor.diagnose import diagnose
    from nndoctor.experiment import ExperimentError, parse_sets
    from nndoctor.report.output import check_outputs
    from nndoctor.report.terminal import render_report
    from nndoctor.signals import interrupt_exit_code, interrupt_name, terminate_as_interrupt

    check_outputs({"--json": ns.json, "--html": ns.html})
    console = Console(stderr=True)
    try:
        with terminate_as_interrupt():
            result = diagnose(ns.experiment, overrides=parse_sets(ns.set), epochs=ns.epochs,
                              human_error=ns.human_error, tune_trials=ns.tune, console=console)
    except ExperimentError as exc:
        raise UsageError(str(exc)) from None
    except ImportError as exc:
        raise UsageError(str(exc)) from None
    report = result.report
    render_report(report, console, title=f"nndoctor diagnose: {os.path.basename(ns.experiment)}")
    if result.interrupted is not None:
        console.print(f"[bold yellow]interrupted[/bold yellow] ({interrupt_name(result.interrupted)}) during "
                      f"{escape(str(result.stopped_at))}: the report covers the stages before it")
    elif result.stopped_at:
        console.print(f"[bold red]stopped at[/bold red] {escape(result.stopped_at)}: fix the error(s) above first, "
                      "then run diagnose again (no tuning of a model that has a bug)")
    plan = (report.facts.get("evaluation") or {}).get("plan") or []
    if plan:
        console.print("[bold]Do next[/bold]")
        for item in plan[:5]:
            console.print(f" {item['rank']}. {escape(item['action'])}")
    if ns.fix and result.interrupted is None:
        _fix(ns, report, console)
    failed = write_report(report, ns.json, ns.html, title=os.path.basename(ns.experiment))
    if ns.html and "--html" not in failed:
        console.print(f"report written to {escape(ns.html)}")
    if result.interrupted is not None:
        return interrupt_exit_code(result.interrupted)
    return fail_on_exit(report, ns.fail_on)
