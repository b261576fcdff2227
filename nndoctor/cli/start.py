"""``nndoctor start EXP``: review an experiment against the field guide's 'start simple' defaults."""

from __future__ import annotations

import argparse
from typing import Any

from rich.console import Console
from rich.markup import escape

from nndoctor.cli.common import load, render, run_guarded, write_json

__all__ = ["add_guided_parser", "register"]

GUIDED_DESCRIPTION = (". EXP is an experiment file defining experiment(**hyperparameters) -> nndoctor.Experiment "
                      "(see docs/guided.md).")


def add_guided_parser(sub: Any, name: str, text: str, func: Any) -> argparse.ArgumentParser:
    """The parser of a guided command (start, overfit, baseline, lr-find): EXP, ``--set``, ``--json``."""
    p = sub.add_parser(name, help=text, description=text + GUIDED_DESCRIPTION)
    p.add_argument("experiment", metavar="EXP", help="experiment file, e.g. my_experiment.py")
    p.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                   help="override a hyperparameter of experiment() (repeatable)")
    p.add_argument("--json", metavar="PATH", help="write the result as JSON to PATH ('-' for stdout)")
    p.set_defaults(func=func)
    return p


def register(sub: Any) -> None:
    add_guided_parser(sub, "start", "review an experiment against the field guide's 'start simple' defaults",
                      cmd_start)


def cmd_start(ns: argparse.Namespace) -> int:
    from nndoctor.start.review import review

    console = Console(stderr=True)
    exp, _ = load(ns)
    report = run_guarded(lambda: review(exp))
    render(report, console, f"nndoctor start: {exp.name}")
    if report.facts.get("first_model"):
        console.print(f"the guide's first model for this data: {escape(report.facts['first_model'])} "
                      "(nndoctor.start.baseline)")
    console.print("next: `nndoctor overfit EXP`, then `nndoctor baseline EXP`", style="dim")
    write_json(ns.json, report.to_dict())
    return 0
