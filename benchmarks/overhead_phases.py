"""Where a watched run's time goes, phase by phase (issue 18's whole-run cost).

Alternates bare and ``nndoctor.watch`` runs of one benchmark model (benchmarks/overhead.py's
loop, thread CPU time, one torch thread) and splits the watched run's excess over the bare run
of the same repetition into: entering the context, the dense first steps, the other sampled
steps, the unsampled steps that read the loss curve, the plain steps, and the exit (the
end-of-run analysis). A step's excess is its time minus the bare run's step of the same index. With
``--checks`` every check's ``check`` calls are timed too (per check, summed over the run,
split into steps and end of run; the timing wrappers add a little to every call)::

    python -m benchmarks.overhead_phases --model mlp100 --steps 150 --reps 10 [--checks]
"""

from __future__ import annotations

import argparse
import collections
import statistics
import time
from typing import Any

import torch
import torch.nn.functional as F

from benchmarks.overhead import MODELS

__all__ = ["PHASES", "main", "phase_run"]

PHASES = ("enter", "dense", "sampled", "curve", "plain", "exit")


def _data(name: str, seed: int, batches: int) -> tuple[Any, Any, list[tuple[torch.Tensor, torch.Tensor]]]:
    make_model, make_input, classes, batch = MODELS[name]
    torch.manual_seed(seed)
    model = make_model()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    g = torch.Generator().manual_seed(seed)
    data = [(make_input(g, batch), torch.randint(0, classes, (batch,), generator=g)) for _ in range(batches)]
    return model, opt, data


def _timed_checks(observer: Any, per_check: dict[str, list[float]]) -> None:
    """Wrap every check's ``check`` (an instance attribute in front of the class's method)."""
    for check in observer.checks:
        inner = check.check
        name = check.name()

        def timed(event: Any, inner: Any = inner, name: str = name) -> Any:
            t0 = time.thread_time()
            try:
                return inner(event)
            finally:
                kind = getattr(event, "kind", "?")
                spent = time.thread_time() - t0
                per_check[name][1 if kind == "end" else 0] += spent
                per_check["kind:" + kind][1 if kind == "end" else 0] += spent
                per_check[f"pair:{name}/{kind}"][1 if kind == "end" else 0] += spent

        check.check = timed


def phase_run(name: str, steps: int, seed: int, watch: bool, batches: int = 8,
              per_check: dict[str, list[float]] | None = None) -> tuple[list[float], list[str], float, float]:
    """(step times, step phases, enter time, exit time) of one run, thread CPU seconds."""
    model, opt, data = _data(name, seed, batches)
    now = time.thread_time
    times: list[float] = []
    phases: list[str] = []
    t_enter = now()
    if watch:
        import nndoctor

        ctx: Any = nndoctor.watch(model, opt)
    else:
        import contextlib

        ctx = contextlib.nullcontext()
    with ctx as handle:
        observer = getattr(handle, "observer", handle)
        if watch and per_check is not None:
            _timed_checks(observer, per_check)
        entered = now() - t_enter
        state = getattr(observer, "state", None)
        heavy = state is not None
        for i in range(steps):
            x, y = data[i % len(data)]
            due = getattr(observer, "_curve_due", None)
            t0 = now()
            opt.zero_grad()
            F.cross_entropy(model(x), y).backward()
            opt.step()
            times.append(now() - t0)
            if not watch:
                phases.append("plain")
            elif heavy and i < observer.schedule.dense:
                phases.append("dense")
            elif heavy:
                phases.append("sampled")
            elif observer._curve_due != due:
                phases.append("curve")
            else:
                phases.append("plain")
            heavy = state is not None and bool(state.sampled)
        t_exit = now()
    return times, phases, entered, now() - t_exit


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="mlp100")
    p.add_argument("--steps", type=int, default=150)
    p.add_argument("--reps", type=int, default=10)
    p.add_argument("--checks", action="store_true", help="also time every check's calls")
    p.add_argument("--top", type=int, default=15)
    ns = p.parse_args(argv)
    torch.set_num_threads(1)
    for w in (False, True):
        phase_run(ns.model, 20, 0, w)  # warm-up (imports, allocator)
    excess: dict[str, list[float]] = {k: [] for k in PHASES}
    counts: dict[str, int] = collections.Counter()
    bare_totals: list[float] = []
    ratios: list[float] = []
    per_check: dict[str, list[float]] = collections.defaultdict(lambda: [0.0, 0.0])
    for rep in range(ns.reps):
        order = (False, True) if rep % 2 == 0 else (True, False)
        runs = {w: phase_run(ns.model, ns.steps, rep, w, per_check=per_check if ns.checks else None)
                for w in order}
        bt, _, be, bx = runs[False]
        wt, wp, we, wx = runs[True]
        bare_total = sum(bt) + be + bx
        bare_totals.append(bare_total)
        ratios.append((sum(wt) + we + wx) / bare_total)
        sums = dict.fromkeys(PHASES, 0.0)
        sums["enter"], sums["exit"] = we - be, wx - bx
        for t, b, ph in zip(wt, bt, wp):
            sums[ph] += t - b
            if rep == 0:
                counts[ph] += 1
        for k in PHASES:
            excess[k].append(sums[k])
    bare_ms = statistics.median(bare_totals) * 1e3
    print(f"{ns.model} {ns.steps} steps x {ns.reps} alternating reps (thread CPU time): bare run "
          f"{bare_ms:.1f} ms, whole-run ratio {statistics.median(ratios):.3f}x "
          f"(IQR {_q(ratios, 0):.3f}-{_q(ratios, 2):.3f})")
    print("| phase | steps | excess ms (median) | IQR | share of bare run |\n|---|---|---|---|---|")
    total = 0.0
    for k in PHASES:
        m = statistics.median(excess[k]) * 1e3
        total += m
        print(f"| {k} | {counts.get(k, '-')} | {m:.1f} | {_q(excess[k], 0) * 1e3:.1f}..{_q(excess[k], 2) * 1e3:.1f} "
              f"| {m / bare_ms * 100:.1f}% |")
    print(f"| sum of medians | {ns.steps} | {total:.1f} | | {total / bare_ms * 100:.1f}% |")
    if ns.checks:
        print(f"\nchecks (ms per run, mean over reps): top {ns.top}")
        kinds = sorted((kv for kv in per_check.items() if kv[0].startswith("kind:")), key=lambda kv: -sum(kv[1]))
        print("  by event kind: " + ", ".join(f"{k[5:]} {sum(v) / ns.reps * 1e3:.2f}" for k, v in kinds))
        pairs = sorted((kv for kv in per_check.items() if kv[0].startswith("pair:")), key=lambda kv: -sum(kv[1]))
        print("  by check and event kind: " + ", ".join(f"{k[5:]} {sum(v) / ns.reps * 1e3:.2f}"
                                                       for k, v in pairs[:ns.top]))
        rows = sorted((kv for kv in per_check.items() if not kv[0].startswith(("kind:", "pair:"))),
                      key=lambda kv: -(kv[1][0] + kv[1][1]))
        for name, (steps_s, end_s) in rows[:ns.top]:
            print(f"  {name:40} steps {steps_s / ns.reps * 1e3:7.2f}  end {end_s / ns.reps * 1e3:7.2f}")
        all_steps = sum(v[0] for k, v in per_check.items() if not k.startswith(("kind:", "pair:"))) / ns.reps * 1e3
        all_end = sum(v[1] for k, v in per_check.items() if not k.startswith(("kind:", "pair:"))) / ns.reps * 1e3
        print(f"  {'ALL':40} steps {all_steps:7.2f}  end {all_end:7.2f}")
    return 0


def _q(values: list[float], i: int) -> float:
    if len(values) >= 4:
        return statistics.quantiles(values, n=4)[i]
    return min(values) if i == 0 else max(values)


if __name__ == "__main__":
    raise SystemExit(main())
