"""``nndoctor evaluate EXP`` and ``nndoctor data EXP``."""

from __future__ import annotations

import argparse
import json
import os
import warnings
from typing import Any

import numpy as np
import torch
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from nndoctor.cli import positive_int, rate
from nndoctor.evaluate.workflow import Evaluation, SplitData, collect, data_findings, evaluate_experiment
from nndoctor.experiment import Experiment, ExperimentError, load_experiment, parse_sets
from nndoctor.findings import Report, Severity
from nndoctor.report.output import check_outputs, write_outputs
from nndoctor.report.terminal import render_report

__all__ = ["register"]


def register(sub: Any) -> None:
    p = sub.add_parser("evaluate", help="train (or load) the experiment, then decompose its error",
                       description="Bias / variance / distribution shift / validation overfitting from the "
                                   "experiment's splits, dataset checks, error analysis and an ordered plan.")
    _common(p)
    p.add_argument("--human-error", type=rate, default=0.0, metavar="E",
                   help="irreducible (human-level) error rate, e.g. 0.02 (default 0)")
    p.add_argument("--checkpoint", metavar="PATH", help="load this state_dict instead of training")
    p.add_argument("--epochs", type=positive_int, default=None, metavar="N",
                   help="epochs to train (default: the experiment's 'epochs' hyperparameter, else 10)")
    p.add_argument("--min-gap", type=rate, default=0.05, metavar="G",
                   help="smallest term worth a warning (default 0.05)")
    p.set_defaults(func=cmd_evaluate)
    d = sub.add_parser("data", help="dataset checks alone: imbalance, label noise, leakage, input shift")
    _common(d)
    d.set_defaults(func=cmd_data)


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("experiment", help="experiment file defining experiment(...) -> nndoctor.Experiment")
    p.add_argument("--set", action="append", default=[], metavar="NAME=VALUE", help="override a hyperparameter")
    p.add_argument("--json", metavar="PATH", help="write the result as JSON")
    p.add_argument("--fail-on", choices=["error", "warning", "info"], help="exit 1 on a finding this severe")


def _load(ns: argparse.Namespace) -> tuple[Experiment, Any]:
    from nndoctor.cli import UsageError

    check_outputs({"--json": ns.json})
    try:
        sets = parse_sets(ns.set)
        exp = load_experiment(ns.experiment, sets)
    except ExperimentError as exc:
        raise UsageError(str(exc)) from None

    def factory() -> Experiment:
        return load_experiment(ns.experiment, sets)

    return exp, factory


def _finish(ns: argparse.Namespace, report: Report, payload: dict[str, Any], console: Console) -> int:
    render_report(report, console, title=f"nndoctor {ns.command}: {os.path.basename(ns.experiment)}")
    write_outputs([("--json", ns.json,
                    lambda: json.dumps({**report.to_dict(), **payload}, indent=2, default=_default) + "\n")])
    if ns.fail_on and report.at_least(Severity.parse(ns.fail_on)):
        return 1
    return 0


def _default(o: Any) -> Any:
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    return str(o)


def cmd_evaluate(ns: argparse.Namespace) -> int:
    from nndoctor.cli import UsageError

    console = Console(stderr=True)
    exp, factory = _load(ns)
    epochs = ns.epochs if ns.epochs is not None else int(exp.hyperparameters.get("epochs", 10))
    if ns.checkpoint:
        _load_checkpoint(exp, ns.checkpoint)
        epochs = 0
    with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.fields[info]}"),
                  TimeElapsedColumn(), console=console, transient=True) as progress:
        task = progress.add_task("training", total=max(epochs, 1), info="")

        def tick(epoch: int, loss: float) -> None:
            progress.update(task, completed=epoch, info=f"epoch {epoch}/{epochs} loss {loss:.4f}")

        try:
            ev = evaluate_experiment(exp, epochs=epochs, human_error=ns.human_error, min_gap=ns.min_gap,
                                     factory=factory, progress=tick)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
    _print_evaluation(ev, console)
    report = Report(findings=ev.findings, facts={"experiment": os.path.abspath(ns.experiment), "epochs": epochs,
                                                 "hyperparameters": exp.hyperparameters})
    return _finish(ns, report, {"evaluation": ev.to_dict()}, console)


def _load_checkpoint(exp: Experiment, path: str) -> None:
    """Load a state_dict (or ``{"model": state_dict}``) safely: ``weights_only``, never executing a pickle."""
    from nndoctor.cli import UsageError

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
            t2.add_row(Text(str(r.slice)), _f(r.train_val_error), _f(r.test_val_error), f"{r.contribution:.0%}",
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


def _f(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def cmd_data(ns: argparse.Namespace) -> int:
    from nndoctor.cli import UsageError

    console = Console(stderr=True)
    exp, _ = _load(ns)
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
    return _finish(ns, report, {}, console)
