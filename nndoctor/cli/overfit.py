"""``nndoctor overfit EXP``: overfit one fixed batch; on failure name the symptom and rank the causes.

Exit code 1 when the batch does not overfit."""

from __future__ import annotations

import argparse
from typing import Any

from rich.console import Console
from rich.markup import escape

from nndoctor.cli.common import load, progress, render, run_guarded, sparkline, write_json
from nndoctor.cli.options import positive_int
from nndoctor.cli.start import add_guided_parser

__all__ = ["register"]


def register(sub: Any) -> None:
    p = add_guided_parser(sub, "overfit", "overfit one fixed batch; on failure name the symptom and rank the causes",
                          cmd_overfit)
    p.add_argument("--max-steps", type=positive_int, default=1000, metavar="N",
                   help="give up after N steps (1000)")
    p.add_argument("--batch-size", type=positive_int, default=32, metavar="N",
                   help="examples in the fixed batch (32; at most the loader's batch)")


def cmd_overfit(ns: argparse.Namespace) -> int:
    from nndoctor.debug.overfit import overfit_batch

    console = Console(stderr=True)
    exp, _ = load(ns)
    with progress(console, "overfitting one batch") as prog:
        task = prog.add_task("", total=ns.max_steps)

        def tick(step: int, loss: float) -> None:
            prog.update(task, completed=step, description=f"step {step} loss {loss:.4g}")

        res = run_guarded(lambda: overfit_batch(exp, max_steps=ns.max_steps, batch_size=ns.batch_size,
                                                on_step=tick))
    verdict = "[green]PASS[/green]" if res.passed else "[bold red]FAIL[/bold red]"
    console.print(f"{verdict} overfit one batch of {res.facts['batch_size']}: loss {res.losses[0]:.4g} -> "
                  f"{res.losses[-1]:.4g} in {len(res.losses)} steps (target <= {res.target_loss:.3g})")
    console.print(f"  loss (log) {sparkline(res.losses, log=True)}")
    if res.symptom:
        console.print(f"  symptom: [bold]{res.symptom}[/bold]; likely causes, most likely first:")
        for i, c in enumerate(res.causes[:5]):
            console.print(f"  {i + 1}. {escape(c.code)} (score {c.score:g}): {escape(c.message)}")
    render(res.report, console, f"nndoctor overfit: {exp.name}")
    write_json(ns.json, {**res.report.to_dict(), "passed": res.passed, "symptom": res.symptom,
                         "losses": res.losses, "causes": [c.__dict__ for c in res.causes]})
    return 0 if res.passed else 1
