"""``nndoctor tune EXP``: coarse-to-fine random search or Bayesian optimisation on Optuna."""

from __future__ import annotations

import argparse
import os
import re
import shlex
import sys
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from nndoctor.cli.common import fmt_num, json_output, progress
from nndoctor.cli.options import UsageError

__all__ = ["best_path", "register"]


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
    p.add_argument("--out", metavar="PATH", help="where to write the best trial (default: best.json next to the "
                                                 "experiment, best-STUDY.json for a --study other than the default)")
    p.add_argument("--json", metavar="PATH", help="write the study summary as JSON")
    p.set_defaults(func=cmd_tune)


def _check_options(ns: argparse.Namespace) -> None:
    """Every bad option value as one line (exit 2), before any storage or study is touched."""
    if ns.trials < 1:
        raise UsageError(f"--trials must be >= 1, got {ns.trials}")
    if ns.epochs is not None and ns.epochs < 1:
        raise UsageError(f"--epochs must be >= 1, got {ns.epochs}")
    if ns.seed is not None and not 0 <= ns.seed < 2**32:
        raise UsageError(f"--seed must be between 0 and 2**32 - 1, got {ns.seed}")
    if ns.study is not None and (not ns.study.strip() or len(ns.study) > 512):
        raise UsageError(f"--study must be a non-empty name of at most 512 characters, got {ns.study!r}")
    if ns.storage is not None:
        if not ns.storage.strip():
            raise UsageError("--storage must be a database URL (postgresql://user:pass@host/db) or a journal file path")
        if "://" not in ns.storage and os.path.isdir(ns.storage):
            raise UsageError(f"--storage {ns.storage!r} is a folder: give a journal file path or a database URL")
    for flag, path in (("--out", ns.out), ("--json", ns.json)):
        if path is None:
            continue
        parent = os.path.dirname(os.path.abspath(path))
        if not path.strip() or os.path.isdir(path) or not os.path.isdir(parent):
            raise UsageError(f"{flag} {path!r} must be a file path in an existing folder")


def _mask_logs(url: str) -> None:
    """Mask the storage password in every log line (``-v``, Optuna's own handler)."""
    import logging

    from nndoctor.tune.storage import MaskFilter

    for logger_name in ("", "optuna"):
        for handler in logging.getLogger(logger_name).handlers:
            handler.addFilter(MaskFilter(url))


def cmd_tune(ns: argparse.Namespace) -> int:
    from nndoctor.report.output import check_outputs

    check_outputs({"--json": ns.json, "--out": ns.out})
    try:
        from nndoctor.tune.interrupt import Interrupt, sigterm_as_interrupt
    except ImportError as exc:
        raise UsageError(str(exc)) from None
    _check_options(ns)
    stop = Interrupt()
    try:
        with sigterm_as_interrupt() as stop:  # SIGTERM is Ctrl-C from here on (exit 143, 130 for Ctrl-C)
            return _tune(ns, stop)
    except KeyboardInterrupt:
        print(f"nndoctor: interrupted ({stop.name})", file=sys.stderr)
        return stop.exit_code


def _tune(ns: argparse.Namespace, stop: Any) -> int:
    try:
        from nndoctor.tune import storage as sto
        from nndoctor.tune import study as st
    except ImportError as exc:
        raise UsageError(str(exc)) from None
    from nndoctor.experiment import ExperimentError, load_experiment, parse_sets
    from nndoctor.tune.space import describe
    from nndoctor.tune.spec import space_for

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
    epochs = ns.epochs if ns.epochs is not None else exp.hyperparameters.get("epochs", 5)
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise UsageError(f"the experiment's default 'epochs' is {epochs!r}: pass --epochs N (N >= 1)")
    default_name = os.path.splitext(os.path.basename(ns.experiment))[0]
    name = ns.study or default_name
    journal = os.path.splitext(os.path.abspath(ns.experiment))[0] + ".nndoctor-journal.log"
    shown = sto.mask(ns.storage) if ns.storage else journal
    if ns.storage:
        _mask_logs(ns.storage)
    try:
        storage = st.make_storage(ns.storage, journal)
    except Exception as exc:  # bad URL, unreachable database, missing driver
        raise UsageError(f"cannot open study storage {shown!r}: {_one_line(exc, ns.storage)}") from None
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if not ns.resume and not ns.storage:
        existing = {s.study_name: s.n_trials for s in optuna.get_all_study_summaries(storage)}
        if existing.get(name):
            raise UsageError(f"a study named {name!r} already has {existing[name]} trials in {journal}: "
                             "pass --resume to continue it, or --study NAME for a new one")
    console.print(f"[bold]tuning {escape(name)}[/bold]: method {method}, {ns.trials} trials x {epochs} epochs, "
                  f"storage {escape(shown)}")
    for line in why:
        console.print(f"  [dim]{escape(line)}[/dim]")
    for pname, dim in space.items():
        console.print(f"  {escape(pname)}: {escape(describe(dim))}")
    fixed_values = {k: v for k, v in exp.hyperparameters.items() if k in fixed}
    study = result = None
    try:
        study = st.make_study(name, storage, method, space, seed=ns.seed)
        result = _run(ns, st, study, fixed_values, space, method, epochs, console)
    except KeyboardInterrupt:
        console.print(f"interrupted ({stop.name}): finished trials are kept; continue with: "
                      f"nndoctor tune {escape(_resume_args(ns, shown))}")
        if study is not None:
            _summarise(ns, study, st.TuneResult(study=study), method, space, console, default_name, shown,
                       interrupted=stop.name)
        return stop.exit_code
    except Exception as exc:
        if ns.storage and type(exc).__module__.startswith(("sqlalchemy", "psycopg")):
            console.print(f"study storage {escape(shown)} failed: {escape(_one_line(exc, ns.storage))}")
            return 1
        raise
    return _summarise(ns, study, result, method, space, console, default_name, shown)


def _one_line(exc: BaseException, url: str | None) -> str:
    """A database error as one line, password masked, without SQLAlchemy's background link."""
    from nndoctor.tune.storage import mask

    text = str(exc).split("(Background on this error at")[0]
    return mask(" ".join(text.split()), url) or type(exc).__name__


def _resume_args(ns: argparse.Namespace, shown: str) -> str:
    args = [ns.experiment, "--resume"]
    if ns.storage:
        args += ["--storage", shown]
    if ns.study:
        args += ["--study", ns.study]
    return shlex.join(args)


def _run(ns: argparse.Namespace, st: Any, study: Any, fixed: dict[str, Any], space: Any, method: str, epochs: int,
         console: Console) -> Any:
    from nndoctor.tune.objective import experiment_objective

    with progress(console, counts=True, transient=False) as prog:
        overall = prog.add_task("trials", total=ns.trials, info="")
        current = prog.add_task("trial", total=epochs, info="")

        def on_epoch(epoch: int, value: float) -> None:
            prog.update(current, completed=epoch, info=f"value {value:.4g}")

        def on_trial(trial: Any) -> None:
            trials = study.get_trials(deepcopy=False)
            done = [t for t in trials if t.state.is_finished()]
            best = _best_value(study)
            prog.update(overall, completed=min(len(done), ns.trials),
                            info=f"best {best:.4g}" if best is not None else "")
            prog.reset(current, total=epochs, info="")
            state = trial.state.name.lower() + (f" ({_why_failed(trial, trials)})" if trial.state.name == "FAIL" else "")
            value = f"{trial.value:.4g}" if trial.value is not None else "-"
            prog.console.print(escape(f"trial {trial.number}: {state} value {value} {trial.params}")
                                   + (f"  [green]best so far {best:.4g}[/green]" if best is not None else ""))

        objective = experiment_objective(ns.experiment, epochs=epochs, fixed=fixed, on_epoch=on_epoch)
        return st.run_trials(study, objective, space, n_trials=ns.trials, method=method, on_trial=on_trial)


def _best_value(study: Any) -> float | None:
    try:
        return float(study.best_value)
    except ValueError:
        return None


def _why_failed(trial: Any, trials: list[Any]) -> str:
    """What really happened to a failed trial: its error, an interruption, or a worker that died."""
    if "fail_reason" in trial.user_attrs:
        return str(trial.user_attrs["fail_reason"])
    why = trial.user_attrs.get("stopped")
    if why is None:  # failed by Optuna's heartbeat check (database storage)
        worker = trial.user_attrs.get("worker")
        why = f"worker {worker} stopped beating" if worker else "its worker stopped"
    retry = [t.number for t in trials if t.system_attrs.get("retry_history", [])[-1:] == [trial.number]]
    return f"{why}; retried as #{retry[0]}" if retry else str(why)


def best_path(ns: argparse.Namespace, study_name: str, default_name: str) -> str:
    """``--out``, else ``best.json`` (default study) or ``best-<study>.json`` next to the experiment."""
    if ns.out:
        return str(ns.out)
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", study_name).strip("._") or "study"
    fname = "best.json" if study_name == default_name else f"best-{safe}.json"
    return os.path.join(os.path.dirname(os.path.abspath(ns.experiment)), fname)


def _summarise(ns: argparse.Namespace, study: Any, result: Any, method: str, space: Any, console: Console,
               default_name: str, shown: str, interrupted: str | None = None) -> int:
    from nndoctor.report.output import write_outputs
    from nndoctor.tune import study as st

    for i, stage in enumerate(result.funnel):
        console.print(f"[bold]coarse-to-fine stage {i}[/bold]: "
                      + escape(", ".join(f"{k} {v}" for k, v in stage.items())))
    trials = study.get_trials(deepcopy=False)
    done = sorted((t for t in trials if t.state.name == "COMPLETE"), key=lambda t: t.value)
    table = Table(title="top trials")
    table.add_column("trial")
    table.add_column("value")
    table.add_column("params")
    for t in done[:8]:
        table.add_row(str(t.number), f"{t.value:.4g}",
                      Text(", ".join(f"{k}={_text(v)}" for k, v in t.params.items())))
    console.print(table)
    counts = result.counts()
    failed = [t for t in trials if t.state.name == "FAIL"]
    console.print(escape(f"trials: {counts}" + ("; failed: " + "; ".join(
        f"#{t.number} {_why_failed(t, trials)}" for t in failed[:5]) if failed else "")))
    imp = st.importance(study, space)
    if imp:
        console.print("[bold]hyperparameter importance[/bold]: "
                      + escape(", ".join(f"{k} {v:.0%}" for k, v in imp.items())))
        for line in st.compare_with_guide(imp):
            console.print(f"  {escape(line)}")
    best = result.best
    payload: dict[str, Any] = {"study": study.study_name, "storage": shown, "method": method, "counts": counts,
                               "importance": imp, "history": [t.value for t in trials if t.state.name == "COMPLETE"],
                               "interrupted": interrupted}
    if best is not None:
        set_line = " ".join(f"--set {shlex.quote(f'{k}={_text(v)}')}" for k, v in best.params.items())
        out = best_path(ns, study.study_name, default_name)
        best_file = {"value": best.value, "params": best.params, "set": set_line, "study": study.study_name}
        write_outputs([json_output("--out", out, best_file)])
        console.print(f"[bold green]best[/bold green] value {best.value:.4g} with {escape(str(best.params))}")
        console.print(escape(f"written {out}; reproduce with: nndoctor evaluate {ns.experiment} {set_line}"))
        payload.update({"best_value": best.value, "best_params": best.params, "set": set_line, "best_file": out})
    write_outputs([json_output("--json", ns.json, payload)])
    return 0


def _text(value: Any) -> str:
    """A parameter value as ``--set`` takes it back (``None`` stays ``None``)."""
    return fmt_num(value, missing="None")
