"""Repair benchmark: does ``nndoctor fix`` repair faulty scripts as well as their fixed twins?

For every faulty script in a corpus folder that has a fixed twin (``<corpus>/fixed/<name>``,
the same script with the bug fixed by hand), and that prints its metric on its last line
(``final: acc=0.91``):
  repaired        a verified remedy reaches >= 90% of the twin's improvement of that metric
  headline works  the remedy of the first root cause tried (the report's headline) is verified
  harmless        every verified remedy, applied to the fixed twin, does not make it worse
  quiet twin      ``fix`` proposes no remedy for the fixed twin
  cost            wall time of ``fix`` as a multiple of one run of the script (and its CPU time as a
                  multiple of one run's: what a loaded machine does not change)
  no runtime remedy  the root causes ``fix`` re-ran nothing for (counted as not repaired)

    python benchmarks/repair.py                              # tests/corpus_ported, both halves
    python benchmarks/repair.py --half holdout --json repair.json
"""

from __future__ import annotations

import argparse
import json
import math
import shlex
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Sequence

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.detection import parse_header  # noqa: E402
from nndoctor.fix.metrics import direction, script_yardstick  # noqa: E402
from nndoctor.fix.session import candidates, fallbacks, run_child, run_fix  # noqa: E402

__all__ = ["Case", "main", "repair_case"]

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Case:
    script: str
    expected: str
    half: str
    metric: str | None = None
    before: float | None = None
    twin: float | None = None
    best: float | None = None                  # best metric among verified remedies
    remedies: list[dict[str, Any]] = field(default_factory=list)   # remedy, code, verdict, after
    repaired: bool = False
    headline_works: bool = False
    harmful: list[str] = field(default_factory=list)  # verified remedies that make the twin worse
    twin_proposals: list[str] = field(default_factory=list)
    no_runtime_remedy: list[str] = field(default_factory=list)  # root causes fix re-ran nothing for
    cost: float | None = None                  # fix wall time / one run
    cpu_cost: float | None = None              # fix CPU time / one run's (what the load does not change)
    problem: str = ""


def repair_case(fault: Path, twin: Path, meta: dict[str, str], max_steps: int | None) -> Case:
    args = shlex.split(meta.get("args", ""))
    case = Case(fault.name, meta.get("expect", "?"), meta.get("half", ""))
    twin_run = run_child(str(twin), args, [], max_steps)
    # what fix could try on the twin: its root causes' remedies, and (counted as if no cause's remedy
    # helped) its symptoms' own remedies
    case.twin_proposals = [name for name, _ in candidates(twin_run.findings) + fallbacks(twin_run.findings, set())]
    session = run_fix(str(fault), args, max_steps=max_steps)
    if session.before is None or session.before.result.get("report") is None:
        case.problem = "the diagnosis run failed"
        return case
    case.cost = session.seconds / max(session.before.seconds, 1e-9)
    case.no_runtime_remedy = [f"{u['code']}@{u['file']}:{u['line']}" if u.get("line") else str(u["code"])
                              for u in session.unremedied]
    if session.before.cpu_seconds > 0:
        case.cpu_cost = session.cpu_seconds / session.before.cpu_seconds
    metric = script_yardstick(twin_run.figures.script)
    if metric is None:
        case.problem = "the twin prints no metric"
        return case
    sign = direction(metric)
    case.metric, case.twin = metric, twin_run.figures.script.get(metric)
    case.before = session.before.figures.script.get(metric)
    if case.before is None and session.before.figures.exit_code not in (0, None):
        case.before = -math.inf * sign  # the fault crashes: any finished run improves on it
    attempts = session.attempts + ([session.combined] if session.combined else [])
    for a in attempts:
        case.remedies.append({"remedy": a.remedy, "code": a.findings[0]["code"], "verdict": a.verdict.verdict,
                              "after": a.after.script.get(metric)})
    verified = [a for a in attempts if a.verdict.verdict == "verified" and a.after.script.get(metric) is not None
                and math.isfinite(a.after.script[metric])]
    if verified:
        case.best = max((a.after.script[metric] for a in verified), key=lambda v: v * sign)
    case.headline_works = bool(session.attempts) and session.attempts[0].verdict.verdict == "verified"
    if case.before is None or case.twin is None or not math.isfinite(case.twin):
        case.problem = "no comparable metric"
        return case
    before = case.before if math.isfinite(case.before) else (-math.inf if sign > 0 else math.inf)
    twin_gain = (case.twin - before) * sign
    if case.best is not None:
        case.repaired = (case.best - before) * sign >= 0.9 * twin_gain
    for a in session.attempts:
        if a.verdict.verdict != "verified":
            continue
        on_twin = run_child(str(twin), args, a.findings, max_steps)
        value = on_twin.figures.script.get(metric)
        if value is None or (case.twin - value) * sign > max(0.02 * abs(case.twin), 1e-6):
            case.harmful.append(a.remedy)
    return case


def _pairs(corpus: Path, half: str | None, filters: Sequence[str]) -> list[tuple[Path, Path, dict[str, str]]]:
    out = []
    for fault in sorted(corpus.glob("*.py")):
        twin = corpus / "fixed" / fault.name
        meta = parse_header(fault)
        if not twin.exists() or "expect" not in meta or (filters and not any(f in fault.name for f in filters)):
            continue
        if half and meta.get("half") != half:
            continue
        out.append((fault, twin, meta))
    return out


def _pct(n: int, d: int) -> str:
    return f"{n}/{d} = {100 * n / d:.0f}%" if d else "0/0"


def _line(c: Case) -> str:
    said = ", ".join(f"{r['remedy']}:{r['verdict']}" for r in c.remedies) or "no remedy"
    return (f"{'REPAIRED' if c.repaired else 'not     '} {c.script:48} {c.expected:14} {c.metric or '-'} "
            f"{c.before} -> twin {c.twin}, best {c.best} | {said}"
            + (f" | HARMFUL on twin: {c.harmful}" if c.harmful else "")
            + (f" | twin got {c.twin_proposals}" if c.twin_proposals else "")
            + (f" | no runtime remedy: {c.no_runtime_remedy}" if c.no_runtime_remedy else "")
            + (f" | {c.problem}" if c.problem else ""))


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--corpus", type=Path, default=ROOT / "tests" / "corpus_ported")
    p.add_argument("--half", choices=["tune", "holdout"], help="only this calibration half")
    p.add_argument("--filter", action="append", default=[], help="only scripts whose name contains this")
    p.add_argument("--max-steps", type=int, default=None)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--json", metavar="PATH")
    ns = p.parse_args(argv)
    pairs = _pairs(ns.corpus, ns.half, ns.filter)
    if not pairs:
        p.error(f"no faulty script with a fixed twin in {ns.corpus}")
    t0 = time.perf_counter()
    def one(t: tuple[Path, Path, dict[str, str]]) -> Case:
        case = repair_case(t[0], t[1], t[2], ns.max_steps)
        print(_line(case), file=sys.stderr, flush=True)  # progress: a case as soon as it is measured
        return case

    with ThreadPoolExecutor(max_workers=max(1, ns.workers)) as pool:
        cases = list(pool.map(one, pairs))
    for c in cases:
        print(_line(c))
    scored = [c for c in cases if not c.problem]
    costs = sorted(c.cost for c in cases if c.cost)
    cpu_costs = sorted(c.cpu_cost for c in cases if c.cpu_cost)
    print(f"repaired {_pct(sum(c.repaired for c in scored), len(scored))} (a verified remedy reaches >= 90% of "
          f"the fixed twin's improvement); headline remedy verified {_pct(sum(c.headline_works for c in scored), len(scored))}")
    print(f"verified remedies that make the twin worse: {sum(len(c.harmful) for c in cases)}; "
          f"fixed twins given a remedy: {sum(bool(c.twin_proposals) for c in cases)}/{len(cases)}; "
          f"fix wall time median {costs[len(costs) // 2]:.1f}x one run" if costs else "")
    unremedied = [c for c in cases if c.no_runtime_remedy and not c.repaired]
    print(f"not repaired with a root cause that has no runtime remedy (the edit is named, nothing re-run): "
          f"{len(unremedied)}" + (f" ({', '.join(c.script for c in unremedied)})" if unremedied else ""))
    if cpu_costs:
        print(f"fix CPU time median {cpu_costs[len(cpu_costs) // 2]:.2f}x one run's "
              f"(mean {sum(cpu_costs) / len(cpu_costs):.2f}x)")
    print(f"({time.perf_counter() - t0:.0f} s, {len(cases)} pairs, {len(cases) - len(scored)} not scored)")
    if ns.json:
        Path(ns.json).write_text(json.dumps([asdict(c) for c in cases], indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
