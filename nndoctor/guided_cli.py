"""The guided workflow's commands: ``start``, ``overfit``, ``baseline``, ``lr-find``.

Each takes an experiment file (``experiment(**hyperparameters) -> nndoctor.Experiment``),
``--set name=value`` to override a hyperparameter and ``--json PATH`` for machine-readable
output. Loading problems become one line and exit code 2. Exit codes: ``overfit`` 1 when
the batch does not overfit, ``lr-find`` 1 when no lr could be suggested, otherwise 0.
"""

from __future__ import annotations

import argparse
import json
import math
from typing import Any, Callable, Sequence

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from nndoctor.cli import positive_float, positive_int

__all__ = ["register", "sparkline"]

_BARS = "▁▂▃▄▅▆▇█"


def sparkline(values: Sequence[float], width: int = 60, log: bool = False) -> str:
    """A one-line chart; non-finite values show as ``×``."""
    vals = [float(v) for v in values]
    if not vals:
        return ""
    if len(vals) > width:
        step = len(vals) / width
        buckets = [vals[int(i * step): max(int(i * step) + 1, int((i + 1) * step))] for i in range(width)]
        vals = [math.inf if any(not math.isfinite(v) for v in b) else sum(b) / len(b) for b in buckets]
    tf = [(math.log10(v) if v > 0 else -12.0) if log and math.isfinite(v) else v for v in vals]
    finite = [v for v in tf if math.isfinite(v)]
    if not finite:
        return "×" * len(tf)
    lo, hi = min(finite), max(finite)
    span = hi - lo or 1.0
    return "".join("×" if not math.isfinite(v) else _BARS[min(7, int((v - lo) / span * 7.999))] for v in tf)


def register(sub: Any) -> None:
    specs: list[tuple[str, str, Callable[[argparse.Namespace], int]]] = [
        ("start", "review an experiment against the field guide's 'start simple' defaults", cmd_start),
        ("overfit", "overfit one fixed batch; on failure name the symptom and rank the causes", cmd_overfit),
        ("baseline", "compare the model with constant, linear and start-simple baselines", cmd_baseline),
        ("lr-find", "learning-rate range test with a robust suggestion", cmd_lr_find),
    ]
    for name, text, func in specs:
        p = sub.add_parser(name, help=text, description=text + ". EXP is an experiment file defining "
                           "experiment(**hyperparameters) -> nndoctor.Experiment (see docs/guided.md).")
        p.add_argument("experiment", metavar="EXP", help="experiment file, e.g. my_experiment.py")
        p.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                       help="override a hyperparameter of experiment() (repeatable)")
        p.add_argument("--json", metavar="PATH", help="write the result as JSON to PATH ('-' for stdout)")
        p.set_defaults(func=func)
        if name == "overfit":
            p.add_argument("--max-steps", type=positive_int, default=1000, metavar="N",
                           help="give up after N steps (1000)")
            p.add_argument("--batch-size", type=positive_int, default=32, metavar="N",
                           help="examples in the fixed batch (32; at most the loader's batch)")
        elif name == "baseline":
            p.add_argument("--epochs", type=positive_int, default=10, metavar="N", help="epochs for every model (10)")
        elif name == "lr-find":
            p.add_argument("--start-lr", type=positive_float, default=1e-7, metavar="LR")
            p.add_argument("--end-lr", type=positive_float, default=10.0, metavar="LR")
            p.add_argument("--steps", type=positive_int, default=100, metavar="N", help="sweep length (100)")
            p.add_argument("--repeats", type=positive_int, default=3, metavar="N",
                           help="sweeps from the same start, suggestions averaged in log space (3)")


# ---------------------------------------------------------------------------------- helpers
def _load(ns: argparse.Namespace) -> Any:
    from nndoctor.cli import UsageError
    from nndoctor.experiment import ExperimentError, load_experiment, parse_sets
    from nndoctor.report.output import check_outputs

    check_outputs({"--json": ns.json})
    try:
        return load_experiment(ns.experiment, parse_sets(ns.set))
    except ExperimentError as exc:
        raise UsageError(str(exc)) from None


def _progress(console: Console, total: int | None, what: str) -> Progress:
    return Progress(TextColumn(f"[bold]{escape(what)}"), BarColumn(), TextColumn("{task.description}"),
                    TimeElapsedColumn(), console=console, transient=True)


def _write_json(path: str | None, payload: dict[str, Any]) -> None:
    from nndoctor.findings import _jsonable
    from nndoctor.report.output import write_outputs

    write_outputs([("--json", path, lambda: json.dumps(_jsonable(payload), indent=2, allow_nan=False) + "\n")])


def _render(report: Any, console: Console, title: str) -> None:
    from nndoctor.report.terminal import render_report

    render_report(report, console, title=title)


def _run_guarded(console: Console, fn: Callable[[], Any]) -> Any:
    """Run a workflow; an error from the user's code becomes one usage line."""
    from nndoctor.cli import UsageError
    from nndoctor.experiment import ExperimentError

    try:
        return fn()
    except ExperimentError as exc:
        raise UsageError(str(exc)) from None
    except (RuntimeError, ValueError, TypeError, IndexError) as exc:
        raise UsageError(f"the experiment failed while running: {type(exc).__name__}: {exc}") from None


# ---------------------------------------------------------------------------------- commands
def cmd_start(ns: argparse.Namespace) -> int:
    from nndoctor.start.review import review

    console = Console(stderr=True)
    exp = _load(ns)
    report = _run_guarded(console, lambda: review(exp))
    _render(report, console, f"nndoctor start: {exp.name}")
    if report.facts.get("first_model"):
        console.print(f"the guide's first model for this data: {escape(report.facts['first_model'])} "
                      "(nndoctor.start.baseline)")
    console.print("next: `nndoctor overfit EXP`, then `nndoctor baseline EXP`", style="dim")
    _write_json(ns.json, report.to_dict())
    return 0


def cmd_overfit(ns: argparse.Namespace) -> int:
    from nndoctor.debug.overfit import overfit_batch

    console = Console(stderr=True)
    exp = _load(ns)
    with _progress(console, ns.max_steps, "overfitting one batch") as prog:
        task = prog.add_task("", total=ns.max_steps)

        def tick(step: int, loss: float) -> None:
            prog.update(task, completed=step, description=f"step {step} loss {loss:.4g}")

        res = _run_guarded(console, lambda: overfit_batch(exp, max_steps=ns.max_steps,
                                                         batch_size=ns.batch_size, on_step=tick))
    verdict = "[green]PASS[/green]" if res.passed else "[bold red]FAIL[/bold red]"
    console.print(f"{verdict} overfit one batch of {res.facts['batch_size']}: loss {res.losses[0]:.4g} -> "
                  f"{res.losses[-1]:.4g} in {len(res.losses)} steps (target <= {res.target_loss:.3g})")
    console.print(f"  loss (log) {sparkline(res.losses, log=True)}")
    if res.symptom:
        console.print(f"  symptom: [bold]{res.symptom}[/bold]; likely causes, most likely first:")
        for i, c in enumerate(res.causes[:5]):
            console.print(f"  {i + 1}. {escape(c.code)} (score {c.score:g}): {escape(c.message)}")
    _render(res.report, console, f"nndoctor overfit: {exp.name}")
    _write_json(ns.json, {**res.report.to_dict(), "passed": res.passed, "symptom": res.symptom,
                          "losses": res.losses, "causes": [c.__dict__ for c in res.causes]})
    return 0 if res.passed else 1


def cmd_baseline(ns: argparse.Namespace) -> int:
    from nndoctor.cli import UsageError
    from nndoctor.start.compare import compare_baselines
    from nndoctor.start.known_results import matching

    console = Console(stderr=True)
    exp = _load(ns)
    if exp.step is not None:
        raise UsageError("baseline needs Experiment(loss=...): other models cannot use a custom step")
    with _progress(console, None, "training baselines") as prog:
        task = prog.add_task("", total=None)
        comp = _run_guarded(console, lambda: compare_baselines(
            exp, epochs=ns.epochs, on_tick=lambda: prog.advance(task)))
    table = Table(title=f"{comp.task} on {comp.split}, best epoch of {ns.epochs}")
    for col in ("model", "what", "loss", "accuracy", "params", "time"):
        table.add_column(col)
    for r in comp.rows:
        table.add_row(r.name, r.description, f"{r.loss:.4g}", "-" if r.accuracy is None else f"{r.accuracy:.3f}",
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
    _render(comp.report, console, f"nndoctor baseline: {exp.name}")
    _write_json(ns.json, {**comp.report.to_dict(), "rows": [r.__dict__ for r in comp.rows], "known_results": known})
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


def cmd_lr_find(ns: argparse.Namespace) -> int:
    from nndoctor.cli import UsageError
    from nndoctor.tune.lr_find import lr_find, lr_findings

    if not 0 < ns.start_lr < ns.end_lr:
        raise UsageError(f"need 0 < --start-lr < --end-lr, got {ns.start_lr:g} and {ns.end_lr:g}")
    if ns.steps < 10:
        raise UsageError(f"--steps must be >= 10, got {ns.steps}")
    if ns.repeats < 1:
        raise UsageError(f"--repeats must be >= 1, got {ns.repeats}")
    console = Console(stderr=True)
    exp = _load(ns)
    current = exp.optimizer.param_groups[0]["lr"]
    total = ns.steps * ns.repeats
    with _progress(console, total, "lr range test") as prog:
        task = prog.add_task("", total=total)

        def tick(i: int, lr: float, loss: float) -> None:
            prog.update(task, completed=i + 1, description=f"lr {lr:.2g} loss {loss:.4g}")

        res = _run_guarded(console, lambda: lr_find(exp, start_lr=ns.start_lr, end_lr=ns.end_lr,
                                                    num_steps=ns.steps, repeats=ns.repeats,
                                                    on_step=tick))
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
        _render(report, console, f"nndoctor lr-find: {exp.name}")
    _write_json(ns.json, {**report.to_dict(), **res.to_dict(), "current_lr": current})
    return 0 if res.suggested_lr is not None else 1
