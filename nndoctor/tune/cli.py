"""``nndoctor tune EXP``: coarse-to-fine random search or Bayesian optimisation on Optuna."""

from __future__ import annotations

import argparse
import json
import os
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

__all__ = ["register"]


def register(sub: Any) -> None:
    p = sub.add_parser("tune", help="tune hyperparameters (Optuna): coarse-to-fine, bayes, random, grid",
                       description="Tune the experiment's keyword arguments. The space comes from a module-level "
                                   "SPACE dict in the experiment file, or is derived from the defaults.")
    p.add_argument("experiment", help="experiment file defining experiment(...) -> nndoctor.Experiment")
    p.add_argument("--trials", type=int, default=40, metavar="N", help="finished trials to reach (default 40)")
    p.add_argument("--method", choices=["bayes", "coarse-to-fine", "random", "grid"], default=None,
                   help="search method (default: bayes, the best in benchmarks/tune_efficiency.py)")
    p.add_argument("--epochs", type=int, default=None, metavar="N",
                   help="epochs per trial (default: the experiment's 'epochs', else 5)")
    p.add_argument("--storage", metavar="URL",
                   help="shared study storage, e.g. postgresql://user@host/db (default: a journal file "
                        "next to the experiment)")
    p.add_argument("--study", metavar="NAME", help="study name (default: the experiment file's name)")
    p.add_argument("--resume", action="store_true", help="continue the existing study")
    p.add_argument("--seed", type=int, default=None, help="sampler seed (leave unset on several workers)")
    p.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                   help="fix a hyperparameter (removed from the search)")
    p.add_argument("--out", metavar="PATH", help="where to write best.json (default: next to the experiment)")
    p.add_argument("--json", metavar="PATH", help="write the study summary as JSON")
    p.set_defaults(func=cmd_tune)


def cmd_tune(ns: argparse.Namespace) -> int:
    from nndoctor.cli import UsageError
    from nndoctor.report.output import check_outputs

    check_outputs({"--json": ns.json, "--out": ns.out})
    try:
        from nndoctor.tune import study as st
    except ImportError as exc:
        raise UsageError(str(exc)) from None
    from nndoctor.experiment import ExperimentError, load_experiment, parse_sets
    from nndoctor.tune.objective import experiment_objective
    from nndoctor.tune.space import describe
    from nndoctor.tune.spec import space_for

    if ns.trials < 1:
        raise UsageError(f"--trials must be >= 1, got {ns.trials}")
    console = Console(stderr=True)
    try:
        fixed = parse_sets(ns.set)
        exp = load_experiment(ns.experiment, fixed)
        space, why = space_for(ns.experiment, exp.hyperparameters)
    except (ExperimentError, ValueError, TypeError) as exc:
        raise UsageError(str(exc)) from None
    for name in fixed:
        space.pop(name, None)
    if not space:
        raise UsageError("nothing to tune: declare SPACE in the experiment file or give experiment() keyword "
                         "arguments such as lr, hidden, weight_decay")
    method = ns.method or st.DEFAULT_METHOD
    epochs = ns.epochs if ns.epochs is not None else int(exp.hyperparameters.get("epochs", 5))
    name = ns.study or os.path.splitext(os.path.basename(ns.experiment))[0]
    journal = os.path.splitext(os.path.abspath(ns.experiment))[0] + ".nndoctor-journal.log"
    try:
        storage = st.make_storage(ns.storage, journal)
    except Exception as exc:  # bad URL, unreachable database, missing driver
        raise UsageError(f"cannot open study storage {ns.storage or journal!r}: {exc}") from None
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if not ns.resume and not ns.storage:
        existing = {s.study_name: s.n_trials for s in optuna.get_all_study_summaries(storage)}
        if existing.get(name):
            raise UsageError(f"a study named {name!r} already has {existing[name]} trials in {journal}: "
                             "pass --resume to continue it, or --study NAME for a new one")
    console.print(f"[bold]tuning {escape(name)}[/bold]: method {method}, {ns.trials} trials x {epochs} epochs, "
                  f"storage {escape(ns.storage or journal)}")
    for line in why:
        console.print(f"  [dim]{escape(line)}[/dim]")
    for pname, dim in space.items():
        console.print(f"  {pname}: {describe(dim)}")
    study = st.make_study(name, storage, method, space, seed=ns.seed)
    fixed_values = {k: v for k, v in exp.hyperparameters.items() if k in fixed}

    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[info]}"),
                  TimeElapsedColumn(), console=console) as progress:
        overall = progress.add_task("trials", total=ns.trials, info="")
        current = progress.add_task("trial", total=epochs, info="")

        def on_epoch(epoch: int, value: float) -> None:
            progress.update(current, completed=epoch, info=f"value {value:.4g}")

        def on_trial(trial: Any) -> None:
            done = [t for t in study.get_trials(deepcopy=False) if t.state.is_finished()]
            best = _best_value(study)
            progress.update(overall, completed=min(len(done), ns.trials),
                            info=f"best {best:.4g}" if best is not None else "")
            progress.reset(current, total=epochs, info="")
            reason = trial.user_attrs.get("fail_reason")
            state = trial.state.name.lower() + (f" ({reason})" if reason else "")
            value = f"{trial.value:.4g}" if trial.value is not None else "-"
            progress.console.print(f"trial {trial.number}: {state} value {value} {trial.params}"
                                   + (f"  [green]best so far {best:.4g}[/green]" if best is not None else ""))

        objective = experiment_objective(ns.experiment, epochs=epochs, fixed=fixed_values, on_epoch=on_epoch)
        try:
            result = st.run_trials(study, objective, space, n_trials=ns.trials, method=method, on_trial=on_trial)
        except KeyboardInterrupt:
            console.print(f"interrupted: the study is kept; continue with nndoctor tune {ns.experiment} --resume")
            return 130
    return _summarise(ns, study, result, method, space, console)


def _best_value(study: Any) -> float | None:
    try:
        return float(study.best_value)
    except ValueError:
        return None


def _summarise(ns: argparse.Namespace, study: Any, result: Any, method: str, space: Any, console: Console) -> int:
    from nndoctor.tune import study as st

    for i, stage in enumerate(result.funnel):
        console.print(f"[bold]coarse-to-fine stage {i}[/bold]: " + ", ".join(f"{k} {v}" for k, v in stage.items()))
    done = [t for t in study.get_trials(deepcopy=False) if t.state.name == "COMPLETE"]
    done.sort(key=lambda t: t.value)
    table = Table(title="top trials")
    table.add_column("trial")
    table.add_column("value")
    table.add_column("params")
    for t in done[:8]:
        table.add_row(str(t.number), f"{t.value:.4g}", ", ".join(f"{k}={_fmt(v)}" for k, v in t.params.items()))
    console.print(table)
    counts = result.counts()
    failed = [t for t in study.get_trials(deepcopy=False) if t.state.name == "FAIL"]
    console.print(f"trials: {counts}" + ("; failed: " + "; ".join(
        f"#{t.number} {t.user_attrs.get('fail_reason', 'worker stopped (retried)')}" for t in failed[:5])
        if failed else ""))
    imp = st.importance(study, space)
    if imp:
        console.print("[bold]hyperparameter importance[/bold]: " + ", ".join(f"{k} {v:.0%}" for k, v in imp.items()))
        for line in st.compare_with_guide(imp):
            console.print(f"  {escape(line)}")
    best = result.best
    payload: dict[str, Any] = {"study": study.study_name, "method": method, "counts": counts,
                               "importance": imp, "history": [t.value for t in study.get_trials(deepcopy=False)
                                                              if t.state.name == "COMPLETE"]}
    if best is not None:
        set_line = " ".join(f"--set {k}={_fmt(v)}" for k, v in best.params.items())
        out = ns.out or os.path.join(os.path.dirname(os.path.abspath(ns.experiment)), "best.json")
        with open(out, "w", encoding="utf-8") as fh:
            json.dump({"value": best.value, "params": best.params, "set": set_line, "study": study.study_name}, fh,
                      indent=2)
        console.print(f"[bold green]best[/bold green] value {best.value:.4g} with {best.params}")
        console.print(f"written {out}; reproduce with: nndoctor evaluate {ns.experiment} {set_line}")
        payload.update({"best_value": best.value, "best_params": best.params, "set": set_line})
    if ns.json:
        with open(ns.json, "w", encoding="utf-8") as fh:
            json.dump(payload, fh, indent=2, default=str)
    return 0


def _fmt(v: Any) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)
