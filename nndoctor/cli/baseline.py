"""``nndoctor baseline EXP``: compare the model with constant, linear and start-simple baselines."""

from __future__ import annotations

import argparse
from typing import Any

from rich.console import Console
from rich.table import Table

from nndoctor.cli.common import fmt_num, load, progress, render, run_guarded, write_json
from nndoctor.cli.options import UsageError, positive_int
from nndoctor.cli.start import add_guided_parser

__all__ = ["register"]


def register(sub: Any) -> None:
    p = add_guided_parser(sub, "baseline", "compare the model with constant, linear and start-simple baselines",
                          cmd_baseline)
    p.add_argument("--epochs", type=positive_int, default=10, metavar="N", help="epochs for every model (10)")


def cmd_baseline(ns: argparse.Namespace) -> int:
    from nndoctor.start.compare import compare_baselines
    from nndoctor.start.known_results import matching

    console = Console(stderr=True)
    exp, _ = load(ns)
    if exp.step is not None:
        raise UsageError("baseline needs Experiment(loss=...): other models cannot use a custom step")
    with progress(console, "training baselines") as prog:
        task = prog.add_task("", total=None)
        comp = run_guarded(lambda: compare_baselines(exp, epochs=ns.epochs, on_tick=lambda: prog.advance(task)))
    table = Table(title=f"{comp.task} on {comp.split}, best epoch of {ns.epochs}")
    for col in ("model", "what", "loss", "accuracy", "params", "time"):
        table.add_column(col)
    for r in comp.rows:
        table.add_row(r.name, r.description, f"{r.loss:.4g}", fmt_num(r.accuracy, ".3f"),
                      f"{r.parameters:,}", f"{r.seconds:.1f}s")
    console.print(table)
    from nndoctor.experiment import first_batch, split_batch

    b = split_batch(first_batch(exp.train))
    x = (b.inputs or tuple(b.kwargs.values()))[0]
    known = matching(tuple(x.shape[1:]), _classes(comp, exp))
    if known:
        kt = Table(title="known results on a matching reference task (test split; benchmarks/known_results.py)")
        for col in ("task", "model", "epochs", "score"):
            kt.add_column(col)
        for r in known:
            score = ", ".join(f"{k} {r[k]:.4g}" for k in ("accuracy", "cross_entropy", "mse") if k in r)
            kt.add_row(r["task"], r["model"], str(r["epochs"]), score)
        console.print(kt)
    render(comp.report, console, f"nndoctor baseline: {exp.name}")
    write_json(ns.json, {**comp.report.to_dict(), "rows": [r.__dict__ for r in comp.rows], "known_results": known})
    return 0


def _classes(comp: Any, exp: Any) -> int | None:
    import torch

    from nndoctor.experiment import first_batch, forward, preserved, split_batch, to_device

    if comp.task != "classification":
        return None
    b = split_batch(to_device(first_batch(exp.train), exp.device))
    with torch.no_grad(), preserved(exp.model, None):
        out = forward(exp.model, b)
    return int(out.shape[-1])
