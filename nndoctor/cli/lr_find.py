"""``nndoctor lr-find EXP``: learning-rate range test with a robust suggestion (the tune step).

Exit code 1 when no learning rate could be suggested."""

from __future__ import annotations

import argparse
from typing import Any

from rich.console import Console
from rich.markup import escape

from nndoctor.cli.common import load, progress, render, run_guarded, sparkline, write_json
from nndoctor.cli.options import UsageError, positive_float, positive_int
from nndoctor.cli.start import add_guided_parser

__all__ = ["register"]


def register(sub: Any) -> None:
    p = add_guided_parser(sub, "lr-find", "learning-rate range test with a robust suggestion", cmd_lr_find)
    p.add_argument("--start-lr", type=positive_float, default=1e-7, metavar="LR")
    p.add_argument("--end-lr", type=positive_float, default=10.0, metavar="LR")
    p.add_argument("--steps", type=positive_int, default=100, metavar="N", help="sweep length (100)")
    p.add_argument("--repeats", type=positive_int, default=3, metavar="N",
                   help="sweeps from the same start, suggestions averaged in log space (3)")


def cmd_lr_find(ns: argparse.Namespace) -> int:
    from nndoctor.tune.lr_find import lr_find, lr_findings

    if not 0 < ns.start_lr < ns.end_lr:
        raise UsageError(f"need 0 < --start-lr < --end-lr, got {ns.start_lr:g} and {ns.end_lr:g}")
    if ns.steps < 10:
        raise UsageError(f"--steps must be >= 10, got {ns.steps}")
    if ns.repeats < 1:
        raise UsageError(f"--repeats must be >= 1, got {ns.repeats}")
    console = Console(stderr=True)
    exp, _ = load(ns)
    current = exp.optimizer.param_groups[0]["lr"]
    total = ns.steps * ns.repeats
    with progress(console, "lr range test") as prog:
        task = prog.add_task("", total=total)

        def tick(i: int, lr: float, loss: float) -> None:
            prog.update(task, completed=i + 1, description=f"lr {lr:.2g} loss {loss:.4g}")

        res = run_guarded(lambda: lr_find(exp, start_lr=ns.start_lr, end_lr=ns.end_lr, num_steps=ns.steps,
                                          repeats=ns.repeats, on_step=tick))
    console.print(f"  smoothed loss {sparkline(res.losses)}")
    if res.lrs:
        console.print(f"  lr            {res.lrs[0]:<10.2g}{'':>{max(0, min(60, len(res.losses)) - 20)}}"
                      f"{res.lrs[-1]:>10.2g}  (stopped: {res.stopped})")
    if res.suggested_lr is None:
        console.print(f"[bold red]no suggestion[/bold red]: {escape(res.reason)}")
    else:
        hint = " (`--set lr=...` to try it)" if "lr" in exp.hyperparameters else ""
        console.print(f"[green]suggested lr: {res.suggested_lr:.3g}[/green] ({escape(res.reason)}); "
                      f"current lr {current:.3g}{hint}")
    report = lr_findings(res, current)
    if report.findings:
        render(report, console, f"nndoctor lr-find: {exp.name}")
    write_json(ns.json, {**report.to_dict(), **res.to_dict(), "current_lr": current})
    return 0 if res.suggested_lr is not None else 1
