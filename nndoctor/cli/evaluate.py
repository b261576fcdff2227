"""``nndoctor evaluate EXP``: train (or load) the experiment, then decompose its error."""

from __future__ import annotations

import argparse
import os
import warnings
from typing import Any

import torch
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from nndoctor.cli.common import add_experiment_args, fmt_num, load, progress, render, write_json
from nndoctor.cli.options import UsageError, fail_on_exit, positive_int, rate
from nndoctor.evaluate.workflow import Evaluation, evaluate_experiment
from nndoctor.experiment import Experiment, load_experiment
from nndoctor.findings import Report

__all__ = ["finish", "register"]


def register(sub: Any) -> None:
    p = sub.add_parser("evaluate", help="train (or load) the experiment, then decompose its error",
                       description="Bias / variance / distribution shift / validation overfitting from the "
                                   "experiment's splits, dataset checks, error analysis and an ordered plan.")
    add_experiment_args(p, fail_on=True)
    p.add_argument("--human-error", type=rate, default=0.0, metavar="E",
                   help="irreducible (human-level) error rate, e.g. 0.02 (default 0)")
    p.add_argument("--checkpoint", metavar="PATH", help="load this state_dict instead of training")
    p.add_argument("--epochs", type=positive_int, default=None, metavar="N",
                   help="epochs to train (default: the experiment's 'epochs' hyperparameter, else 10)")
    p.add_argument("--min-gap", type=rate, default=0.05, metavar="G",
                   help="smallest term worth a warning (default 0.05)")
    p.set_defaults(func=cmd_evaluate)


def finish(ns: argparse.Namespace, report: Report, payload: dict[str, Any], console: Console) -> int:
    """Render ``report``, write ``--json`` (the report and ``payload``), apply ``--fail-on``."""
    render(report, console, f"nndoctor {ns.command}: {os.path.basename(ns.experiment)}")
    write_json(ns.json, lambda: {**report.to_dict(), **payload})
    return fail_on_exit(report, ns.fail_on)


def cmd_evaluate(ns: argparse.Namespace) -> int:
    console = Console(stderr=True)
    exp, sets = load(ns)

    def factory() -> Experiment:
        return load_experiment(ns.experiment, sets)

    epochs = ns.epochs if ns.epochs is not None else int(exp.hyperparameters.get("epochs", 10))
    if ns.checkpoint:
        _load_checkpoint(exp, ns.checkpoint)
        epochs = 0
    with progress(console) as prog:
        task = prog.add_task("training", total=max(epochs, 1), info="")

        def tick(epoch: int, loss: float) -> None:
            prog.update(task, completed=epoch, info=f"epoch {epoch}/{epochs} loss {loss:.4f}")

        try:
            ev = evaluate_experiment(exp, epochs=epochs, human_error=ns.human_error, min_gap=ns.min_gap,
                                     factory=factory, progress=tick)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
    _print_evaluation(ev, console)
    report = Report(findings=ev.findings, facts={"experiment": os.path.abspath(ns.experiment), "epochs": epochs,
                                                 "hyperparameters": exp.hyperparameters})
    return finish(ns, report, {"evaluation": ev.to_dict()}, console)


def _load_checkpoint(exp: Experiment, path: str) -> None:
    """Load a state_dict (or ``{"model": state_dict}``) safely: ``weights_only``, never executing a pickle."""
    if not os.path.isfile(path):
        what = "is a folder" if os.path.isdir(path) else "does not exist"
        raise UsageError(f"--checkpoint {path}: {what}; give a file saved with torch.save(model.state_dict(), ...)")
    try:
        with warnings.catch_warnings():  # e.g. "Detected pickle protocol 4": the one line below says it all
            warnings.simplefilter("ignore")
            state = torch.load(path, map_location=exp.device, weights_only=True)
    except Exception as exc:  # UnpicklingError, a zip or EOF error, a pickle that is not plain weights
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UsageError(f"--checkpoint {path}: not a PyTorch checkpoint that can be loaded safely "
                         f"(weights only): {first[:200]}") from None
    if isinstance(state, dict) and isinstance(state.get("model"), dict):
        state = state["model"]
    if not isinstance(state, dict):
        raise UsageError(f"--checkpoint {path}: holds a {type(state).__name__}, not a state_dict")
    try:
        exp.model.load_state_dict(state)
    except (RuntimeError, KeyError, TypeError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UsageError(f"--checkpoint {path}: does not fit the experiment's model: {first[:300]}") from None


def _print_evaluation(ev: Evaluation, console: Console) -> None:
    d = ev.decomposition
    table = Table(title="error decomposition (field guide step 3)")
    for col in ("split / term", "value", "95% interval"):
        table.add_column(col)
    for split, err in d.errors.items():
        table.add_row(f"{split.replace('_', '-')} error", f"{err:.4f}", "")
    table.add_row("irreducible", f"{d.irreducible:.4f}", "")
    dom = d.dominant
    for t in d.terms:
        ci = f"{t.low:+.4f} .. {t.high:+.4f}" if t.low is not None else ""
        name = t.name.replace("_", " ") + ("  <- dominant" if dom is not None and t is dom else "")
        table.add_row(name, f"{t.value:+.4f}", ci)
    console.print(table)
    for note in d.notes:
        console.print(f"[dim]note: {escape(note)}[/dim]")
    if ev.table:
        t2 = Table(title="error analysis (per class, sorted by contribution)")
        for col in ("slice", "train-val error", "test-val error", "share of errors", "shift?"):
            t2.add_column(col)
        for r in ev.table[:12]:
            t2.add_row(Text(str(r.slice)), fmt_num(r.train_val_error, ".3f"), fmt_num(r.test_val_error, ".3f"), f"{r.contribution:.0%}",
                       "[red]yes[/red]" if r.shifted else "")
        console.print(t2)
    if ev.plan:
        console.print("[bold]Improvement plan[/bold]")
        last = None
        for item in ev.plan[:8]:
            tag = "[red]blocking[/red] " if item.blocking else ""
            because = f"  [dim](because: {escape(item.because)})[/dim]" if item.because != last else ""
            last = item.because
            console.print(f" {item.rank}. {tag}{escape(item.action)}{because}")
