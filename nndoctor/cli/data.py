"""``nndoctor data EXP``: the dataset checks alone (imbalance, label noise, leakage, input shift)."""

from __future__ import annotations

import argparse
import os
from typing import Any

from rich.console import Console

from nndoctor.cli.common import add_experiment_args, load
from nndoctor.cli.evaluate import finish
from nndoctor.cli.options import UsageError

__all__ = ["register"]


def register(sub: Any) -> None:
    d = sub.add_parser("data", help="dataset checks alone: imbalance, label noise, leakage, input shift")
    add_experiment_args(d, fail_on=True)
    d.set_defaults(func=cmd_data)


def cmd_data(ns: argparse.Namespace) -> int:
    from nndoctor.evaluate.workflow import SplitData, collect, data_findings
    from nndoctor.findings import Report

    console = Console(stderr=True)
    exp, _ = load(ns)
    splits: dict[str, SplitData] = {}
    try:
        for name in ("train", "train_val", "test_val", "test"):
            loader = getattr(exp, name)
            if loader is not None:
                splits[name] = collect(exp, loader)
        findings = data_findings(splits, trained=False)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    sizes = {k: len(v.errors) for k, v in splits.items()}
    console.print(f"[dim]examples per split: {sizes}[/dim]")
    report = Report(findings=findings, facts={"experiment": os.path.abspath(ns.experiment), "sizes": sizes})
    return finish(ns, report, {}, console)
