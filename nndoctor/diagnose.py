"""``nndoctor diagnose EXP``: the whole field-guide loop from one command.

start-simple review -> overfit a single batch (implement-&-debug checks watching) ->
LR range test -> training with the monitor on -> evaluate and decompose -> dataset checks
-> ordered improvement plan -> tuning if asked. Pessimistic like the guide: a stage that
finds a blocking bug stops the run there and says so; nobody should tune a model with a bug.
"""

from __future__ import annotations

import argparse
import os
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from rich.console import Console
from rich.markup import escape

from nndoctor.cli import nonneg_int, positive_int, rate
from nndoctor.findings import Finding, Report, Severity, Step
from nndoctor.signals import interrupt_exit_code, interrupt_name, terminate_as_interrupt

__all__ = ["Stage", "diagnose", "register"]


@dataclass
class Stage:
    name: str
    seconds: float
    summary: str
    blocking: bool = False


@dataclass
class Diagnosis:
    report: Report
    stages: list[Stage] = field(default_factory=list)
    stopped_at: str | None = None
    interrupted: KeyboardInterrupt | None = None  # Ctrl-C or SIGTERM stopped a stage


def _blocking(findings: list[Finding]) -> list[Finding]:
    """Definite bugs of the implement-&-debug step stop the loop."""
    return [f for f in findings if f.severity is Severity.ERROR and f.step in (Step.DEBUG, Step.START)]


def diagnose(
    path: str,
    *,
    overrides: dict[str, Any] | None = None,
    epochs: int | None = None,
    human_error: float = 0.0,
    tune_trials: int = 0,
    console: Console | None = None,
) -> Diagnosis:
    """Run the loop on the experiment file at ``path``; every stage is timed and reported."""
    from nndoctor.experiment import load_experiment

    console = console or Console(stderr=True)
    overrides = dict(overrides or {})
    findings: list[Finding] = []
    facts: dict[str, Any] = {"experiment": os.path.abspath(path), "command": "diagnose"}
    stages: list[Stage] = []
    internal: list[Any] = []
    interrupted: list[KeyboardInterrupt] = []

    def stage(name: str, fn: Callable[[], tuple[str, list[Finding]]]) -> bool:
        t0 = time.perf_counter()
        try:
            with console.status(f"[bold]{name}[/bold]..."):
                summary, found = fn()
        except KeyboardInterrupt as exc:  # Ctrl-C, or SIGTERM under terminate_as_interrupt(): report so far
            dt = time.perf_counter() - t0
            interrupted.append(exc)
            stages.append(Stage(name, dt, f"interrupted ({interrupt_name(exc)})", True))
            console.print(f"[bold yellow]interrupted[/bold yellow] {name} ({dt:.1f}s): {interrupt_name(exc)}")
            return False
        dt = time.perf_counter() - t0
        findings.extend(found)
        block = _blocking(found)
        stages.append(Stage(name, dt, summary, bool(block)))
        mark = "[red]stop[/red]" if block else "[green]ok[/green]"
        console.print(f"{mark} {name} ({dt:.1f}s): {escape(summary)}")
        return not block

    exp = load_experiment(path, overrides)
    facts["hyperparameters"] = exp.hyperparameters
    epochs = epochs if epochs is not None else int(exp.hyperparameters.get("epochs", 10))

    def start() -> tuple[str, list[Finding]]:
        from nndoctor.start.review import review

        rep = review(exp)
        internal.extend(rep.internal_errors)
        n = len([f for f in rep.findings if f.severity is not Severity.INFO])
        return f"{n} setup issue(s) against the start-simple defaults", list(rep.findings)

    def overfit() -> tuple[str, list[Finding]]:
        from nndoctor.debug.overfit import overfit_batch

        res = overfit_batch(exp, max_steps=500)
        internal.extend(res.report.internal_errors)
        facts["overfit"] = {"passed": res.passed, "losses": res.losses, "symptom": res.symptom}
        found = list(res.report.findings)
        if not res.passed and res.symptom and not res.facts.get("still_falling"):
            found.append(Finding(
                code="loss-curve.cannot-overfit-one-batch", severity=Severity.ERROR, step=Step.DEBUG,
                message=(f"the model cannot overfit a single batch (the loss {res.symptom}): there is a bug or a "
                         "setting that prevents learning; fix it before training further"),
                evidence={"symptom": res.symptom, "initial_loss": res.losses[0], "final_loss": res.losses[-1],
                          "likely_causes": [c.code for c in res.causes[:3]]},
                fixes=tuple(c.fixes[0] for c in res.causes[:3] if c.fixes), location="overfit one batch"))
        verdict = "passed" if res.passed else f"failed ({res.symptom})"
        return f"overfit one batch {verdict}: loss {res.losses[0]:.4g} -> {res.losses[-1]:.4g}", found

    def lr_range() -> tuple[str, list[Finding]]:
        from nndoctor.tune.lr_find import lr_find, lr_findings

        res = lr_find(exp)
        facts["lr_find"] = res.to_dict()
        lr = exp.optimizer.param_groups[0]["lr"] if exp.optimizer else None
        rep = lr_findings(res, lr)
        sug = f"{res.suggested_lr:.2g}" if res.suggested_lr else "none"
        return f"suggested lr {sug} (current {lr:g})", list(rep.findings)

    def train() -> tuple[str, list[Finding]]:
        from nndoctor.evaluate.workflow import train_epochs
        from nndoctor.monitor.observer import Observer

        with Observer(models=[exp.model], optimizers=[exp.optimizer], discover=False) as obs:
            losses = train_epochs(exp, epochs)
        rep = obs.report()
        internal.extend(rep.internal_errors)
        for key in ("curves", "grad_norms", "activation_health"):
            if key in rep.facts:
                facts[key] = rep.facts[key]
        facts["steps"] = rep.facts.get("steps")
        return f"{epochs} epochs, training loss {losses[0]:.4g} -> {losses[-1]:.4g}", list(rep.findings)

    def evaluate() -> tuple[str, list[Finding]]:
        from nndoctor.evaluate.workflow import evaluate_experiment

        if exp.train_val is None:
            return "skipped: the experiment has no train_val loader", []
        ev = evaluate_experiment(exp, epochs=0, human_error=human_error,
                                 factory=lambda: load_experiment(path, overrides))
        facts["evaluation"] = ev.to_dict()
        dom = ev.decomposition.dominant
        return (f"dominant term: {dom.name.replace('_', ' ') if dom else 'none'}; "
                f"errors {', '.join(f'{k} {v:.3f}' for k, v in ev.decomposition.errors.items())}"), ev.findings

    def tune() -> tuple[str, list[Finding]]:
        import tempfile

        from nndoctor.tune import study as st
        from nndoctor.tune.objective import experiment_objective
        from nndoctor.tune.spec import space_for

        space, _ = space_for(path, exp.hyperparameters)
        for k in overrides:
            space.pop(k, None)
        with tempfile.TemporaryDirectory() as tmp:
            study = st.make_study("diagnose", st.make_storage(None, os.path.join(tmp, "j.log")),
                                  st.DEFAULT_METHOD, space, seed=0)
            fixed = {k: v for k, v in exp.hyperparameters.items() if k in overrides}
            st.run_trials(study, experiment_objective(path, epochs=max(1, epochs // 2), fixed=fixed), space,
                          n_trials=tune_trials, method=st.DEFAULT_METHOD)
            imp = st.importance(study, space)
            complete = [t for t in study.trials if t.state.name == "COMPLETE"]
            facts["tune"] = {"history": [t.value for t in complete], "importance": imp,
                             "best_params": study.best_params if complete else {},
                             "guide": st.compare_with_guide(imp)}
        if not complete:
            return "no trial completed", []
        best = min(complete, key=lambda t: t.value)
        set_line = " ".join(f"--set {k}={v:.4g}" if isinstance(v, float) else f"--set {k}={v}"
                            for k, v in best.params.items())
        return f"best value {best.value:.4g} with {set_line}", [Finding(
            code="lr.tuned-configuration" if "lr" in best.params else "optimizer.tuned-configuration",
            severity=Severity.INFO, step=Step.TUNE,
            message=f"best of {len(complete)} trials: value {best.value:.4g} with {best.params}",
            evidence={"set": set_line, "importance": imp}, fixes=(f"Re-run with {set_line}",),
            location="tune")]

    ok = stage("start simple: review the setup", start)
    if ok:
        ok = stage("implement & debug: overfit a single batch", overfit)
    if ok:
        ok = stage("tune: LR range test", lr_range)
    if ok:
        ok = stage("implement & debug: train with the monitor on", train)
    if ok:
        ok = stage("evaluate: decompose the error, check the data", evaluate)
    if ok and tune_trials:
        ok = stage(f"tune: {tune_trials} trials", tune)
    stopped = None if ok else stages[-1].name
    from nndoctor.improve.plan import build_plan

    ev = facts.get("evaluation") or {}
    dominant = ev.get("actionable_term")
    plan = build_plan(findings, dominant=dominant, hparams=exp.hyperparameters)
    if ev:
        ev["plan"] = [p.to_dict() for p in plan]
    else:
        facts["evaluation"] = {"plan": [p.to_dict() for p in plan]}
    facts["stages"] = [s.__dict__ for s in stages]
    facts["stopped_at"] = stopped
    if interrupted:
        facts["interrupted"] = interrupt_name(interrupted[0])
    unique: dict[tuple[str, str], Finding] = {}
    for f in findings:
        unique.setdefault(f.key, f)
    report = Report(findings=list(unique.values()), facts=facts, internal_errors=internal)
    return Diagnosis(report=report, stages=stages, stopped_at=stopped,
                     interrupted=interrupted[0] if interrupted else None)


def register(sub: Any) -> None:
    p = sub.add_parser("diagnose", help="the whole field-guide loop on an experiment file, with an HTML report",
                       description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("experiment", help="experiment file defining experiment(...) -> nndoctor.Experiment")
    p.add_argument("--html", metavar="PATH", help="write the self-contained HTML report here")
    p.add_argument("--json", metavar="PATH", help="write everything as JSON (schema 1)")
    p.add_argument("--tune", type=nonneg_int, default=0, metavar="N",
                   help="tune with N trials at the end (default: no)")
    p.add_argument("--human-error", type=rate, default=0.0, metavar="E", help="irreducible error rate (default 0)")
    p.add_argument("--epochs", type=positive_int, default=None, metavar="N",
                   help="training epochs (default: experiment's)")
    p.add_argument("--set", action="append", default=[], metavar="NAME=VALUE", help="override a hyperparameter")
    p.add_argument("--fail-on", choices=["error", "warning", "info"], help="exit 1 on a finding this severe")
    p.add_argument("--fix", action="store_true",
                   help="then try each root cause's remedy (a --set override, a module rewrite or a runtime hook) "
                        "in a fresh training run and say which ones are verified")
    p.set_defaults(func=cmd_diagnose)


def _fix(ns: argparse.Namespace, report: Report, console: Console) -> None:
    """``--fix``: the remedies' table, kept in the report's facts as ``fix``."""
    from nndoctor.experiment import parse_sets
    from nndoctor.fix.experiment import fix_experiment, render_experiment_fix

    hparams = report.facts.get("hyperparameters") or {}
    epochs = ns.epochs if ns.epochs is not None else int(hparams.get("epochs", 10))
    with terminate_as_interrupt():
        try:
            fixed = fix_experiment(ns.experiment, [f.to_dict() for f in report.sorted()],
                                   overrides=parse_sets(ns.set), epochs=epochs, hparams=hparams,
                                   progress=lambda msg: console.print(f"[dim]fix: {escape(msg)}[/dim]"))
        except KeyboardInterrupt:
            console.print("[bold yellow]interrupted[/bold yellow] while trying remedies")
            return
    render_experiment_fix(fixed, console)
    report.facts["fix"] = fixed.to_dict()


def cmd_diagnose(ns: argparse.Namespace) -> int:
    from nndoctor.cli import UsageError
    from nndoctor.experiment import ExperimentError, parse_sets
    from nndoctor.report.html import render_html
    from nndoctor.report.jsonout import to_json
    from nndoctor.report.output import check_outputs, write_outputs
    from nndoctor.report.terminal import render_report

    check_outputs({"--json": ns.json, "--html": ns.html})
    console = Console(stderr=True)
    try:
        with terminate_as_interrupt():
            result = diagnose(ns.experiment, overrides=parse_sets(ns.set), epochs=ns.epochs,
                              human_error=ns.human_error, tune_trials=ns.tune, console=console)
    except ExperimentError as exc:
        raise UsageError(str(exc)) from None
    except ImportError as exc:
        raise UsageError(str(exc)) from None
    report = result.report
    render_report(report, console, title=f"nndoctor diagnose: {os.path.basename(ns.experiment)}")
    if result.interrupted is not None:
        console.print(f"[bold yellow]interrupted[/bold yellow] ({interrupt_name(result.interrupted)}) during "
                      f"{escape(str(result.stopped_at))}: the report covers the stages before it")
    elif result.stopped_at:
        console.print(f"[bold red]stopped at[/bold red] {escape(result.stopped_at)}: fix the error(s) above first, "
                      "then run diagnose again (no tuning of a model that has a bug)")
    plan = (report.facts.get("evaluation") or {}).get("plan") or []
    if plan:
        console.print("[bold]Do next[/bold]")
        for item in plan[:5]:
            console.print(f" {item['rank']}. {escape(item['action'])}")
    if ns.fix and result.interrupted is None:
        _fix(ns, report, console)
    failed = write_outputs([
        ("--json", ns.json, lambda: to_json(report) + "\n"),
        ("--html", ns.html, lambda: render_html(report, title=os.path.basename(ns.experiment)))])
    if ns.html and "--html" not in failed:
        console.print(f"report written to {escape(ns.html)}")
    if result.interrupted is not None:
        return interrupt_exit_code(result.interrupted)
    if ns.fail_on and report.at_least(Severity.parse(ns.fail_on)):
        return 1
    return 0
