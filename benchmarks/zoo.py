"""The run zoo: each check's false-alarm rate on healthy runs and detection rate on mutants.

A single script cannot set a threshold. The zoo samples hundreds of seeded healthy training
runs (MLP, CNN, RNN/LSTM/GRU, transformers, language models from a zero-initialised bigram
table to a GELU transformer, autoencoders, LBFGS in double precision; SGD, Adam, AdamW,
RMSprop, Adagrad; schedules with warm-up and restarts; accumulation, clipping, periodic
evaluation; short and long runs) and recipes with loops of their own (runzoo/recipes.py: GANs,
a VAE, SimCLR and triplet losses, KL distillation, a frozen backbone's head, a curriculum,
mixup's soft targets; runzoo/recipes_more.py: class- and sample-weighted losses on imbalanced
data, a multi-task loss (maybe in float64 on purpose), mixed-length token sequences whose
padding the loss ignores, runs of fewer than 30 steps, warm-up with cosine restarts), keeps those that really train well on held-out data,
runs each under ``nndoctor.watch()`` and counts every warning as a false alarm. Mutation
operators (DeepCrime's kinds: lr, loss input, zero_grad, freezing, detaching, labels,
normalisation, init, activation, train mode, optimizer settings, regularisation, dtype,
shape) applied to healthy parents give the detection rate, counted only on mutants that
train clearly worse than their parent.

Configurations with an even seed form the ``tune`` half (thresholds may be set on it),
odd seeds the ``holdout`` half, reported separately and never used for tuning.

    python benchmarks/zoo.py                       # 120 healthy configs, 120 mutants, 2 workers
    python benchmarks/zoo.py --healthy 400 --mutants 400 --json zoo.json
    python benchmarks/zoo.py --healthy 30 --recipes 40 --mutants 0   # more of the recipe kinds
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections import Counter, defaultdict
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path
from typing import Any, Iterable, Sequence

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.runzoo.config import Config, sample_config, sample_recipe  # noqa: E402
from benchmarks.runzoo.mutations import MUTATIONS, Mutation, effective, mutate  # noqa: E402
from benchmarks.runzoo.train import Outcome, run_config  # noqa: E402

__all__ = ["healthy_summary", "main", "mutant_summary", "plan_mutants", "run_all"]

HALVES = ("tune", "holdout")


def _init_worker() -> None:
    import torch

    torch.set_num_threads(1)


def _run(cfg: Config) -> Outcome:
    return run_config(cfg)


def run_all(configs: Sequence[Config], workers: int, progress: bool = True) -> list[Outcome]:
    """Run every config under nndoctor, ``workers`` processes at a time, in order."""
    if workers <= 1:
        outcomes = []
        for i, cfg in enumerate(configs):
            outcomes.append(run_config(cfg))
            if progress:
                print(f"  {i + 1}/{len(configs)} {cfg.short()}", file=sys.stderr, flush=True)
        return outcomes
    ctx = get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_init_worker) as pool:
        outcomes = []
        for i, out in enumerate(pool.map(_run, configs)):
            outcomes.append(out)
            if progress:
                print(f"  {i + 1}/{len(configs)} {configs[i].short()}", file=sys.stderr, flush=True)
        return outcomes


def plan_mutants(parents: Iterable[Config], limit: int) -> list[Config]:
    """Mutants of healthy parents, operators taken round-robin so each gets its share."""
    out: list[Config] = []
    turn = 0
    for parent in parents:
        if len(out) >= limit:
            break
        for k in range(len(MUTATIONS)):
            op = MUTATIONS[(turn + k) % len(MUTATIONS)]
            if op.applies(parent):
                out.append(mutate(parent, op))
                turn = (turn + k + 1) % len(MUTATIONS)
                break
    return out


def _half(outcome: Outcome) -> str:
    return "tune" if outcome.config["seed"] % 2 == 0 else "holdout"


def healthy_summary(outcomes: Sequence[Outcome]) -> dict[str, Any]:
    """Per half: runs kept, runs with any warning, and per-code false-alarm rates."""
    kept = [o for o in outcomes if o.trained_well]
    result: dict[str, Any] = {"sampled": len(outcomes), "kept": len(kept),
                              "discarded": [o.config["seed"] for o in outcomes if not o.trained_well],
                              "internal_errors": sum(len(o.internal_errors) for o in outcomes)}
    for half in HALVES:
        runs = [o for o in kept if _half(o) == half]
        codes: Counter[str] = Counter()
        examples: dict[str, list[int]] = defaultdict(list)
        for o in runs:
            for code in {f["code"] for f in o.warnings()}:
                codes[code] += 1
                examples[code].append(o.config["seed"])
        recipes = [o for o in runs if o.config.get("recipe")]
        result[half] = {
            "runs": len(runs),
            "false_alarm_runs": sum(1 for o in runs if o.warnings()),
            "recipe_runs": len(recipes),
            "recipe_false_alarm_runs": sum(1 for o in recipes if o.warnings()),
            "per_code": {c: {"runs": n, "rate": n / max(1, len(runs)), "seeds": examples[c][:10]}
                         for c, n in codes.most_common()},
        }
    return result


def mutant_summary(parents: dict[int, Outcome], mutants: Sequence[Outcome]) -> dict[str, Any]:
    """Per operator and half: applied, effective (trains worse), detected, headline right."""
    rows: dict[str, dict[str, Any]] = {}
    for op in MUTATIONS:
        rows[op.name] = {"expected": op.expected, **{h: Counter() for h in HALVES}, "first_steps": [],
                         "missed": []}
    for m in mutants:
        op_name = m.config["mutation"]
        op: Mutation = next(o for o in MUTATIONS if o.name == op_name)
        parent = parents[m.config["seed"]]
        row, half = rows[op_name], _half(m)
        row[half]["applied"] += 1
        if not effective(parent.quality, m.quality, m.crashed):
            continue
        row[half]["effective"] += 1
        warnings = m.warnings()
        hit = [f for f in warnings if f["category"] == op.expected]
        if hit:
            row[half]["detected"] += 1
            steps = [f["first_step"] for f in hit if f["first_step"] is not None]
            if steps:
                row["first_steps"].append(min(steps))
        else:
            row["missed"].append({"seed": m.config["seed"], "said": sorted({f["code"] for f in warnings})})
        if warnings and warnings[0]["category"] == op.expected:
            row[half]["headline"] += 1
    return rows


def _rate(n: int, d: int) -> str:
    return f"{n}/{d} = {100 * n / d:.0f}%" if d else "0/0"


def report(h: dict[str, Any], m: dict[str, Any] | None) -> str:
    lines = [f"healthy zoo: {h['sampled']} configs sampled, {h['kept']} trained well and are scored "
             f"({len(h['discarded'])} discarded: they did not beat their untrained self on held-out data); "
             f"internal errors {h['internal_errors']}"]
    for half in HALVES:
        r = h[half]
        lines.append(f"  {half:8} false-alarm runs {_rate(r['false_alarm_runs'], r['runs'])}"
                     f" (recipe runs {_rate(r['recipe_false_alarm_runs'], r['recipe_runs'])})")
        for code, v in r["per_code"].items():
            lines.append(f"    {code:45} {v['runs']:3d} runs  {100 * v['rate']:5.1f}%  seeds {v['seeds']}")
    if m is not None:
        lines.append("mutants (detected = expected category at warning/error; only mutants that train worse count):")
        lines.append(f"  {'operator':24} {'expected':15} " + "  ".join(
            f"{h_:>28}" for h_ in ("tune det (headline)", "holdout det (headline)")) + "  median first step")
        totals = {h_: Counter() for h_ in HALVES}
        for name, row in m.items():
            cells = []
            for half in HALVES:
                c = row[half]
                for k in ("applied", "effective", "detected", "headline"):
                    totals[half][k] += c[k]
                cells.append(f"{c['detected']}/{c['effective']} ({c['headline']}) of {c['applied']}".rjust(28))
            fs = statistics.median(row["first_steps"]) if row["first_steps"] else "-"
            lines.append(f"  {name:24} {row['expected']:15} " + "  ".join(cells) + f"  {fs}")
        for half in HALVES:
            t = totals[half]
            lines.append(f"  {half:8} detected {_rate(t['detected'], t['effective'])}, headline right "
                         f"{_rate(t['headline'], t['effective'])} (effective mutants; {t['applied']} applied)")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--healthy", type=int, default=120, help="healthy configs to sample (default 120)")
    p.add_argument("--mutants", type=int, default=120, help="mutants of healthy parents to run (default 120)")
    p.add_argument("--recipes", type=int, default=-1,
                   help="healthy recipe runs (GANs, VAE, contrastive, distillation, fine-tuning, curriculum, "
                        "soft targets, weighted and multi-task losses, padded sequences, short runs) beside the --healthy configs, seeded after them (default: a third of --healthy)")
    p.add_argument("--start", type=int, default=0, help="first config seed (default 0)")
    p.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1))
    p.add_argument("--json", metavar="PATH", help="write every outcome and the summaries as JSON")
    ns = p.parse_args(argv)
    if ns.healthy < 1 or ns.mutants < 0 or ns.workers < 1:
        p.error(f"--healthy >= 1, --mutants >= 0, --workers >= 1 (got {ns.healthy}, {ns.mutants}, {ns.workers})")
    t0 = time.perf_counter()
    recipes = ns.healthy // 3 if ns.recipes < 0 else ns.recipes
    first = ns.start + ns.healthy
    configs = ([sample_config(s) for s in range(ns.start, first)]
               + [sample_recipe(s) for s in range(first, first + recipes)])
    healthy = run_all(configs, ns.workers)
    hs = healthy_summary(healthy)
    ms, mutants = None, []
    if ns.mutants:
        parents = {o.config["seed"]: o for o in healthy if o.trained_well}
        mutant_cfgs = plan_mutants([c for c in configs if c.seed in parents], ns.mutants)
        mutants = run_all(mutant_cfgs, ns.workers)
        ms = mutant_summary(parents, mutants)
    print(report(hs, ms))
    print(f"({time.perf_counter() - t0:.0f} s)")
    if ns.json:
        with open(ns.json, "w", encoding="utf-8") as fh:
            json.dump({"healthy": hs, "mutants": ms,
                       "outcomes": [vars(o) for o in healthy], "mutant_outcomes": [vars(o) for o in mutants]},
                      fh, indent=1, default=str)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
