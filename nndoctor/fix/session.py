"""``nndoctor fix``'s loop: diagnose, try each root cause's remedy in a re-run, compare.

Every run is a separate process running the unchanged script with the same arguments (a
seeded script repeats itself exactly); a remedy changes the run only through hooks. The
baseline runs twice, so the difference between those two runs is the noise a remedy must
beat; the second run (the noise run) comes after the remedies' re-runs, and is not made when
one of them already repeated the diagnosis's first training losses bit for bit (what the noise
run would have shown). When several remedies are verified, they are also tried together.
"""

from __future__ import annotations

import json
import logging
import math
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from nndoctor.fix.edits import SourceEdit, source_edit
from nndoctor.fix.metrics import Figures, Verdict, direction, figures_of, judge
from nndoctor.fix.remedies import remedy_for
from nndoctor.fix.repeat import MIN_PREFIX, PREFIX
from nndoctor.fix.unremedied import describe_unremedied

_log = logging.getLogger(__name__)

__all__ = ["Attempt", "FixSession", "RunOutput", "candidates", "demote_alternatives", "demote_symptoms", "fallbacks",
           "keep_combination", "run_child", "run_fix", "without_remedy"]


@dataclass
class RunOutput:
    result: dict[str, Any]
    stdout: str
    seconds: float
    figures: Figures

    @property
    def findings(self) -> list[dict[str, Any]]:
        return (self.result.get("report") or {}).get("findings", [])

    @property
    def cpu_seconds(self) -> float:
        """The run's CPU time (its process and the children that ended; 0: not reported)."""
        value = self.result.get("cpu_seconds")
        return float(value) if isinstance(value, (int, float)) else 0.0

    @property
    def error(self) -> str:
        errors = self.result.get("remedy_errors") or []
        return "; ".join(errors)


@dataclass
class Attempt:
    remedy: str
    findings: list[dict[str, Any]]           # the findings this remedy answers (code, location, ...)
    description: str
    edit: str
    verdict: Verdict
    after: Figures
    finding_gone: bool
    seconds: float
    remaining: frozenset[tuple[str, str]] | None = None   # (code, location) of the re-run's warnings; None: no report
    source: SourceEdit | None = None         # the edit at file:line (a diff where the location is known)
    run: RunOutput | None = None             # the re-run itself

    def to_dict(self) -> dict[str, Any]:
        return {"remedy": self.remedy, "codes": [f["code"] for f in self.findings],
                "code": self.findings[0]["code"], "location": self.findings[0].get("location", ""),
                "description": self.description,
                "edit": (self.source or SourceEdit(self.edit)).to_dict(), **self.verdict.to_dict(),
                "apply": self.verdict.verdict == "verified",
                "after_figures": self.after.to_dict(), "finding_gone": self.finding_gone, "seconds": round(self.seconds, 2)}


@dataclass
class FixSession:
    script: str
    args: list[str]
    before: RunOutput | None = None
    repeat: RunOutput | None = None
    attempts: list[Attempt] = field(default_factory=list)
    combined: Attempt | None = None
    interrupt: BaseException | None = None   # the Ctrl-C / SIGTERM that stopped the session
    seconds: float = 0.0

    @property
    def interrupted(self) -> bool:
        return self.interrupt is not None

    @property
    def unremedied(self) -> list[dict[str, Any]]:
        """Root causes of the diagnosis with no runtime remedy: the edit to make, not re-run."""
        return without_remedy(self.before.findings, self.script) if self.before is not None else []

    @property
    def cpu_seconds(self) -> float:
        """CPU time of every run made (the diagnosis, the noise run, the remedies, the combination)."""
        runs = [self.before, self.repeat] + [a.run for a in self.attempts] \
            + ([self.combined.run] if self.combined else [])
        return sum(r.cpu_seconds for r in runs if r is not None)

    @property
    def runs(self) -> int:
        """Runs made: the diagnosis, the noise run, one per remedy, the verified ones together."""
        ran = self.repeat is not None and not self.repeat.result.get("repeat_shown_by")
        return (self.before is not None) + ran + len(self.attempts) + (self.combined is not None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "tool": "nndoctor", "command": "fix", "script": self.script, "args": self.args,
            "before": self.before.figures.to_dict() if self.before else None,
            "noise_run": self.repeat.figures.to_dict() if self.repeat else None,
            "noise_run_repeated_diagnosis": bool(self.repeat and self.repeat.result.get("repeat_of_diagnosis")),
            "noise_run_skipped_for": (self.repeat.result.get("repeat_shown_by") if self.repeat else None),
            "diagnosis": self.before.findings if self.before else [],
            "remedies": [a.to_dict() for a in self.attempts],
            "no_runtime_remedy": self.unremedied,
            "combined": self.combined.to_dict() if self.combined else None,
            "interrupted": self.interrupted, "runs": self.runs, "seconds": round(self.seconds, 2),
            "run_seconds": round(self.before.seconds, 2) if self.before else None,
            "cpu_seconds": round(self.cpu_seconds, 2),
            "run_cpu_seconds": round(self.before.cpu_seconds, 2) if self.before else None,
        }


def run_child(script: str, args: list[str], remedies: list[dict[str, Any]], max_steps: int | None,
              timeout: float | None = None, repeat_of: list[Any] | None = None) -> RunOutput:
    """Run the script once in its own process, with ``remedies`` applied. ``repeat_of``: the
    diagnosis's first backward values; the run stops as soon as it repeats them exactly (its result
    then says ``repeat_of_diagnosis``, see :mod:`nndoctor.fix.repeat`)."""
    with tempfile.TemporaryDirectory(prefix="nndoctor-fix-") as tmp:
        spec_path, out_path = os.path.join(tmp, "spec.json"), os.path.join(tmp, "out.json")
        with open(spec_path, "w", encoding="utf-8") as fh:
            json.dump({"script": os.path.abspath(script), "args": list(args), "max_steps": max_steps,
                       "remedies": remedies, "out": out_path, "repeat_of": repeat_of}, fh)
        started = time.perf_counter()
        try:
            proc = subprocess.run([sys.executable, "-m", "nndoctor.fix.child", spec_path], capture_output=True,
                                  text=True, timeout=timeout, cwd=os.path.dirname(os.path.abspath(script)) or None)
        except subprocess.TimeoutExpired as exc:  # (the child is killed): this run failed, the session goes on
            out = exc.stdout.decode(errors="replace") if isinstance(exc.stdout, bytes) else (exc.stdout or "")
            result = {"exit_code": None, "report": None,
                      "remedy_errors": [f"the re-run took longer than --timeout {timeout:g} s and was stopped"]}
            return RunOutput(result, out, time.perf_counter() - started, figures_of(result, out))
        seconds = time.perf_counter() - started
        result = _read_result(out_path, proc.stderr)
    return RunOutput(result, proc.stdout, seconds, figures_of(result, proc.stdout))


def _read_result(path: str, stderr: str) -> dict[str, Any]:
    """The child's JSON result, or a failed one naming the last line of its stderr."""
    try:
        with open(path, encoding="utf-8") as fh:
            return json.load(fh)
    except (OSError, ValueError):
        tail = (stderr.strip().splitlines() or ["no output"])[-1]
        return {"exit_code": None, "report": None, "remedy_errors": [f"the re-run failed: {tail}"]}


def _has_symptom(f: dict[str, Any], findings: list[dict[str, Any]]) -> bool:
    """Another warning or error of the diagnosis names ``f`` as its cause."""
    key = (str(f.get("code")), str(f.get("location", "")))
    return any(g is not f and g.get("severity") in ("warning", "error")
               and any(_cause_key(c) == key or c == key[0] for c in g.get("caused_by") or [])
               for g in findings)


def candidates(findings: list[dict[str, Any]]) -> list[tuple[str, list[dict[str, Any]]]]:
    """Root-cause findings (warning or error, not caused by another finding) that have a remedy,
    grouped by remedy, in the report's order (root causes first). A remedy that needs evidence of
    harm (``Remedy.needs_symptom``: rescaling inputs) is left out where no other finding of the run
    is caused by its finding."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for f in findings:
        if f.get("severity") not in ("warning", "error") or f.get("caused_by"):
            continue
        remedy = remedy_for(f)
        if remedy is not None and (not remedy.needs_symptom or _has_symptom(f, findings)):
            groups.setdefault(remedy.name, []).append(f)
    return list(groups.items())


def _cause_key(cause: Any) -> tuple[str, str]:
    """(code, location) of a ``caused_by`` entry (a dict, or a bare code)."""
    if isinstance(cause, dict):
        return str(cause.get("code")), str(cause.get("location", ""))
    return str(cause), ""


def fallbacks(findings: list[dict[str, Any]], helped: set[tuple[str, str]]) -> list[tuple[str, list[dict[str, Any]]]]:
    """Findings caused by another finding (a symptom, left out of :func:`candidates`) that have a
    remedy of their own, once none of their causes is ``helped`` ((code, location) of a cause whose
    remedy was verified): a cause with no runtime remedy (a debug slice that cannot be widened, labels
    that cannot be cleaned at run time) or whose remedy did nothing leaves the symptom's own remedy the
    one to try (overfitting caused by a small training set: stop at the best validation step). Grouped
    by remedy, in the report's order; remedies already among the root causes' are left out."""
    tried = {name for name, _ in candidates(findings)}
    groups: dict[str, list[dict[str, Any]]] = {}
    for f in findings:
        causes = f.get("caused_by") or []
        if f.get("severity") not in ("warning", "error") or not causes:
            continue
        if any(_cause_key(c) in helped or (isinstance(c, str) and c in {code for code, _ in helped}) for c in causes):
            continue
        remedy = remedy_for(f)
        if remedy is not None and remedy.name not in tried:
            groups.setdefault(remedy.name, []).append(f)
    return list(groups.items())


def without_remedy(findings: list[dict[str, Any]], script: str | None = None) -> list[dict[str, Any]]:
    """Root-cause findings (warning or error, not caused by another) that no runtime remedy answers
    (labels unrelated to the inputs, a model too small for the data, ...): code, location, the
    catalogue's first fix (the edit to make in the source), where in ``script`` to make it when known
    (``file``, ``line``, ``source_line``) and the evidence (``message``, ``evidence``); nothing is re-run
    for them (:mod:`nndoctor.fix.unremedied`)."""
    return [describe_unremedied(f, script) for f in findings
            if f.get("severity") in ("warning", "error") and not f.get("caused_by") and remedy_for(f) is None]


def _safely(text: Callable[[], Any], default: Any, errors: list[str]) -> Any:
    """``text()``, or ``default`` when the remedy's own code raises (noted in ``errors``)."""
    try:
        return text()
    except Exception as exc:  # noqa: BLE001 - a remedy's broken description never ends the session
        errors.append(f"{type(exc).__name__}: {exc}")
        return default


def _attempt(name: str, findings: list[dict[str, Any]], before: RunOutput, repeat: RunOutput | None,
             run: RunOutput, script: str | None = None) -> Attempt:
    """The re-run of ``name`` judged against the diagnosis and noise runs. A remedy whose text
    (description, edit, diff) raises keeps its measured verdict, with a generic text."""
    remedy = remedy_for(findings[0])
    assert remedy is not None
    codes = {(f["code"], f.get("location", "")) for f in findings}
    gone = run.result.get("report") is not None and not any(
        (g["code"], g.get("location", "")) in codes for g in run.findings)
    remaining = (frozenset((g["code"], g.get("location", "")) for g in run.findings
                           if g.get("severity") in ("warning", "error"))
                 if run.result.get("report") is not None else None)
    errors: list[str] = []
    edit = str(_safely(lambda: remedy.edit(findings[0]), f"see `nndoctor explain {findings[0]['code']}`", errors))
    describe = str(_safely(lambda: remedy.describe(findings[0]), name, errors))
    source = _safely(lambda: source_edit([(name, f) for f in findings], edit, script), None, errors)
    if errors:
        _log.warning("nndoctor fix: remedy %s could not describe itself: %s", name, "; ".join(errors))
    return Attempt(name, findings, describe, edit,
                   judge(before.figures, run.figures, repeat.figures if repeat else None, run.error,
                         loss_changed=any(r.changes_loss for f in findings if (r := remedy_for(f)) is not None),
                         regularises=all(r.regularises for f in findings if (r := remedy_for(f)) is not None)),
                   run.figures, gone, run.seconds, remaining, source, run)


def _clears(a: Attempt, b: Attempt) -> bool:
    """``a``'s re-run no longer shows any of ``b``'s findings."""
    return a.remaining is not None and not any((f["code"], f.get("location", "")) in a.remaining
                                               for f in b.findings)


def demote_symptoms(attempts: list[Attempt]) -> None:
    """A verified remedy whose finding also goes away under another verified remedy (and not the
    other way round), where that other remedy does at least as well, treated a symptom: its
    verdict becomes ``symptom`` (a lower learning rate helps a little when the real bug is
    elsewhere, and hurts once that bug is fixed)."""
    verified = [a for a in attempts if a.verdict.verdict == "verified"]
    demoted: list[tuple[Attempt, Attempt]] = []
    for b in verified:
        for a in verified:
            if a is b or not _clears(a, b) or _clears(b, a):
                continue
            va, vb = a.verdict.after, b.verdict.after
            sign = -1 if a.verdict.metric.endswith("loss") or direction(a.verdict.metric.split(":")[-1]) < 0 else 1
            if va is None or vb is None or not math.isfinite(va) or (math.isfinite(vb) and (va - vb) * sign < 0):
                continue
            demoted.append((b, a))
            break
    for b, a in demoted:
        v = b.verdict
        b.verdict = Verdict("symptom", v.metric, v.before, v.after, v.threshold,
                            f"better, but its finding also goes away with {a.remedy} ({a.findings[0]['code']}), "
                            "which does at least as well: fix that first")


def _better(a: float, b: float, metric: str) -> float:
    """How much better ``a`` is than ``b`` on ``metric`` (negative: worse)."""
    sign = -1 if metric.endswith("loss") or direction(metric.split(":")[-1]) < 0 else 1
    return (a - b) * sign


def demote_alternatives(verified: list[Attempt], together: Attempt) -> None:
    """Verified remedies that do worse together than the best of them alone (by more than 2% of
    its value) are alternatives, not complements (a lower learning rate and gradient clipping
    both stop an explosion; both at once train too slowly): the first in the report's order
    (root causes first) stays verified unless another is better beyond that margin; the others
    become ``symptom``."""
    values = [(a, a.verdict.after) for a in verified]
    if len(values) < 2 or any(v is None or not math.isfinite(v) for _, v in values):
        return
    metric = verified[0].verdict.metric
    best = max(values, key=lambda t: _better(t[1], 0.0, metric))  # type: ignore[arg-type]
    both = together.verdict.after
    margin = 0.02 * abs(best[1])  # type: ignore[arg-type]
    if both is not None and math.isfinite(both) and _better(both, best[1], metric) >= -margin:  # type: ignore[arg-type]
        return
    keep = verified[0] if _better(best[1], values[0][1], metric) <= margin else best[0]  # type: ignore[arg-type]
    for a in verified:
        if a is not keep:
            v = a.verdict
            a.verdict = Verdict("symptom", v.metric, v.before, v.after, v.threshold,
                                f"better alone, but together with {keep.remedy} ({keep.findings[0]['code']}) the "
                                f"run does worse than with {keep.remedy} alone: an alternative to it, fix that first")


def keep_combination(alone: list[Attempt], together: Attempt) -> None:
    """A combination that holds a symptom's remedy (demoted by :func:`demote_symptoms`) is worth
    applying only when it beats the best remedy alone beyond the noise threshold; otherwise it is
    a ``symptom`` too (apply the best alone)."""
    v = together.verdict
    values = [a.verdict.after for a in alone]
    if v.verdict != "verified" or v.after is None or not math.isfinite(v.after) \
            or any(x is None or not math.isfinite(x) for x in values):
        return
    best = max(alone, key=lambda a: _better(a.verdict.after, 0.0, v.metric))  # type: ignore[arg-type]
    if _better(v.after, best.verdict.after, v.metric) > v.threshold:  # type: ignore[arg-type]
        return
    together.verdict = Verdict("symptom", v.metric, v.before, v.after, v.threshold,
                               f"no better than {best.remedy} alone ({best.findings[0]['code']}): apply that")


def _noise_run(before: RunOutput, script: str, args: list[str], max_steps: int | None,
               timeout: float | None) -> RunOutput:
    """The unchanged script again, for the run-to-run noise; a run that repeats the diagnosis's first
    training losses bit for bit is stopped there and stands for the diagnosis run (noise 0)."""
    prefix = before.result.get("loss_prefix")
    run = run_child(script, args, [], max_steps, timeout, **({"repeat_of": prefix} if prefix else {}))
    if run.result.get("repeat_of_diagnosis"):
        return RunOutput({**before.result, "repeat_of_diagnosis": True, "cpu_seconds": run.cpu_seconds},
                         before.stdout, run.seconds, before.figures)
    return run


def _repeat_shown(before: RunOutput, measured: list[tuple[str, list[dict[str, Any]], RunOutput]]) -> RunOutput | None:
    """The diagnosis standing for the noise run, where a remedy's re-run noted the same first training
    losses bit for bit (a remedy acting later on, or on evaluation only): the script repeats itself
    as far as the noise run would have looked (:mod:`nndoctor.fix.repeat`), noise 0. None otherwise."""
    expected = before.result.get("loss_prefix")
    if not isinstance(expected, list) or len(expected) < MIN_PREFIX or any(v is None for v in expected):
        return None
    n = min(PREFIX, len(expected))
    for name, _, run in measured:
        seen = run.result.get("loss_prefix")
        if isinstance(seen, list) and len(seen) >= n and seen[:n] == expected[:n]:
            return RunOutput({**before.result, "repeat_of_diagnosis": True, "repeat_shown_by": name,
                              "cpu_seconds": 0.0}, before.stdout, 0.0, before.figures)
    return None


def run_fix(script: str, args: list[str], *, max_steps: int | None = None,
            progress: Callable[[str], None] | None = None, timeout: float | None = None) -> FixSession:
    """Diagnose ``script``, then try each root cause's remedy in its own re-run (Ctrl-C keeps
    what was measured so far)."""
    say = progress or (lambda _msg: None)
    session = FixSession(script, list(args))
    started = time.perf_counter()
    measured: list[tuple[str, list[dict[str, Any]], RunOutput]] = []  # re-runs not judged yet

    def judge_measured() -> None:
        assert session.before is not None
        for name, findings, run in measured:
            session.attempts.append(_attempt(name, findings, session.before, session.repeat, run, script))
        measured.clear()

    try:
        say("diagnosis run")
        session.before = run_child(script, args, [], max_steps, timeout)
        todo = candidates(session.before.findings)
        later = len(fallbacks(session.before.findings, set()))  # symptoms' remedies, if their causes' do not help
        if not todo and not later:
            return session
        say(f"{len(todo)} remedies to try: the script runs up to {len(todo) + later + 2} more times "
            f"(once per remedy, once to measure run-to-run noise unless a remedy's re-run already repeats "
            f"the diagnosis's first training losses, and once with the verified ones together when two or "
            f"more are verified)" + (f"; {later} more for symptoms if their causes' remedies do not "
                                                  "help" if later else ""))
        for i, (name, findings) in enumerate(todo):
            say(f"remedy {i + 1}/{len(todo)}: {name} for {findings[0]['code']}")
            measured.append((name, findings, run_child(script, args, findings, max_steps, timeout)))
        # the noise run, unless a remedy's re-run already repeated the diagnosis's first training losses
        # bit for bit (what the noise run would show, at the cost of one more run)
        session.repeat = _repeat_shown(session.before, measured) \
            or _noise_run(session.before, script, args, max_steps, timeout)
        judge_measured()
        helped = {(f["code"], f.get("location", "")) for a in session.attempts if a.verdict.verdict == "verified"
                  for f in a.findings}
        for name, findings in fallbacks(session.before.findings, helped):
            say(f"remedy of a symptom whose cause no remedy helped: {name} for {findings[0]['code']}")
            run = run_child(script, args, findings, max_steps, timeout)
            session.attempts.append(_attempt(name, findings, session.before, session.repeat, run, script))
        alone = [a for a in session.attempts if a.verdict.verdict == "verified"]  # each helped alone
        demote_symptoms(session.attempts)
        verified = [a for a in session.attempts if a.verdict.verdict == "verified"]
        if len(alone) >= 2:
            # every remedy that helped alone, a symptom's too (a re-initialisation that goes part
            # of the way and the learning rate the diagnosis measured): together they may do more
            say("the verified remedies together")
            together = [f for a in alone for f in a.findings]
            run = run_child(script, args, together, max_steps, timeout)
            combo = _attempt(alone[0].remedy, together, session.before, session.repeat, run)
            combo.remedy = " + ".join(a.remedy for a in alone)
            combo.description = "; ".join(a.description for a in alone)
            combo.edit = " ".join(a.edit for a in alone)
            combo.source = _safely(lambda: source_edit([(a.remedy, f) for a in alone for f in a.findings],
                                                       combo.edit, script), None, [])
            session.combined = combo
            if len(verified) < len(alone):
                keep_combination(alone, combo)
            if len(verified) >= 2:
                demote_alternatives(verified, combo)
    except KeyboardInterrupt as exc:  # Ctrl-C, or SIGTERM under nndoctor.signals: keep what was measured
        session.interrupt = exc
        if measured and session.before is not None:
            judge_measured()  # (judged without the noise run where it had not run yet)
    finally:
        session.seconds = time.perf_counter() - started
    return session
