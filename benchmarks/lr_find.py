"""Benchmark of learning-rate suggestions against a grid search (``nndoctor lr-find``).

For each reference task (MLP, CNN, LSTM/GRU, regression; several batch sizes and
optimizers, with and without normalisation layers):

1. grid-best lr: a log grid of 15 lrs (1e-4 .. 4.6, three per decade), a fixed budget of
   300 training steps, 3 seeds; the score is the training loss averaged over the last 10%
   of steps and over the seeds (a run that diverges scores +inf). The near-optimal band
   is every grid lr scoring within 10% of the best; a secondary score counts suggestions
   inside the band widened 2x each way (flat optima make the single best lr arbitrary).
2. for each seed, the suggestions of nndoctor (``lr_range_test``: ``REPEATS`` sweeps of
   1e-7 .. 10 over 100 steps from the same start, EMA 0.98, stop at 4x best, each read by
   ``suggest_lr``, combined by their geometric mean), Lightning's steepest gradient rule and
   fastai's valley rule (on the first of those sweeps, as they work today; and, as
   ``lightning-2`` / ``fastai-2``, combined over the same sweeps the way nndoctor combines
   its own, to show that the gain is not only the repetition), nndoctor's rule on the first
   sweep alone (``nndoctor-1``) and torch-lr-finder (its own range test with its defaults
   and its steepest-gradient suggestion, ``LRFinder.plot(suggest_lr=True)``).

It prints per task the ratio suggestion / grid-best and, per rule, the share of
(task, seed) cases within 3x of the grid-best (and the share of tasks whose median
suggestion over the seeds is within 3x): for the 10 reference tasks (``TASKS``, on
which ``suggest_lr`` was designed), for the held-out tasks (``HELDOUT``: added later and
never used to tune the rule) and in total. Run::

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/lr_find.py [--json PATH] [--quick] [--cache DIR] [--repeats N]

``--cache DIR`` stores the grid scores and the sweep curves per task (they do not depend on
the suggestion rules), so that a second run re-scores the rules in seconds.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import math
import os
import sys
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
from torch import nn
from torch.utils.data import BatchSampler, DataLoader, RandomSampler, TensorDataset

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from nndoctor.tune.lr_find import (  # noqa: E402
    REPEATS,
    combine_sweeps,
    fastai_valley,
    geometric_mean,
    lightning_steepest,
    lr_range_test,
    suggest_lr,
)

GRID = [10 ** (-4 + k / 3) for k in range(15)]


# ---------------------------------------------------------------------------------- data
def _digits() -> tuple[torch.Tensor, torch.Tensor]:
    from sklearn.datasets import load_digits

    d = load_digits()
    x = torch.tensor(d.data, dtype=torch.float32) / 16.0
    return x, torch.tensor(d.target, dtype=torch.long)


def _standardise(x: torch.Tensor) -> torch.Tensor:
    return (x - x.mean(0)) / (x.std(0) + 1e-6)


def _friedman() -> tuple[torch.Tensor, torch.Tensor]:
    from sklearn.datasets import make_friedman1

    x, y = make_friedman1(n_samples=2000, n_features=10, noise=0.5, random_state=0)
    yt = torch.tensor(y, dtype=torch.float32).unsqueeze(1)
    return torch.tensor(x, dtype=torch.float32), (yt - yt.mean()) / yt.std()


def _cancer() -> tuple[torch.Tensor, torch.Tensor]:
    from sklearn.datasets import load_breast_cancer

    d = load_breast_cancer()
    return _standardise(torch.tensor(d.data, dtype=torch.float32)), torch.tensor(d.target, dtype=torch.float32)


def _sequences() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    n, t = 1200, 20
    y = torch.randint(0, 4, (n,), generator=g)
    freq = (1 + y.float()).unsqueeze(1) * 0.35
    phase = torch.rand(n, 1, generator=g) * 6.28
    steps = torch.arange(t).float().unsqueeze(0)
    x = torch.sin(freq * steps + phase) + 0.3 * torch.randn(n, t, generator=g)
    return x.unsqueeze(-1), y


class _SeqNet(nn.Module):
    def __init__(self, cell: type[nn.Module], hidden: int = 32, classes: int = 4) -> None:
        super().__init__()
        self.rnn = cell(1, hidden, batch_first=True)
        self.head = nn.Linear(hidden, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.rnn(x)
        return self.head(out[:, -1])


def _cnn(bn: bool) -> nn.Module:
    norm = (lambda c: nn.BatchNorm2d(c)) if bn else (lambda c: nn.Identity())
    return nn.Sequential(
        nn.Unflatten(1, (1, 8, 8)),
        nn.Conv2d(1, 8, 3, padding=1), norm(8), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(8, 16, 3, padding=1), norm(16), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))


def _mlp(d_in: int, d_out: int, hidden: int = 64, norm: str = "") -> nn.Module:
    layers: list[nn.Module] = [nn.Linear(d_in, hidden)]
    if norm == "bn":
        layers.append(nn.BatchNorm1d(hidden))
    elif norm == "ln":
        layers.append(nn.LayerNorm(hidden))
    layers += [nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, d_out)]
    return nn.Sequential(*layers)


def _bce(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return nn.functional.binary_cross_entropy_with_logits(out.squeeze(1), y)


@dataclass
class Task:
    name: str
    data: Callable[[], tuple[torch.Tensor, torch.Tensor]]
    model: Callable[[], nn.Module]
    optimizer: str  # "adam", "sgd" (momentum 0.9), "sgd0" (plain)
    batch_size: int
    loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    steps: int = 300


TASKS = [
    Task("digits_mlp_adam_bs32", _digits, lambda: _mlp(64, 10), "adam", 32, nn.functional.cross_entropy),
    Task("digits_mlp_sgd_bs128", _digits, lambda: _mlp(64, 10), "sgd", 128, nn.functional.cross_entropy),
    Task("digits_mlp_plainsgd_bs8", _digits, lambda: _mlp(64, 10), "sgd0", 8, nn.functional.cross_entropy),
    Task("digits_cnn_adam_bs64", _digits, lambda: _cnn(False), "adam", 64, nn.functional.cross_entropy),
    Task("digits_cnn_bn_sgd_bs32", _digits, lambda: _cnn(True), "sgd", 32, nn.functional.cross_entropy),
    Task("seq_lstm_adam_bs32", _sequences, lambda: _SeqNet(nn.LSTM), "adam", 32, nn.functional.cross_entropy),
    Task("seq_gru_sgd_bs16", _sequences, lambda: _SeqNet(nn.GRU), "sgd", 16, nn.functional.cross_entropy),
    Task("friedman_mlp_adam_bs64", _friedman, lambda: _mlp(10, 1), "adam", 64, nn.functional.mse_loss),
    Task("friedman_mlp_ln_sgd_bs16", _friedman, lambda: _mlp(10, 1, norm="ln"), "sgd", 16, nn.functional.mse_loss),
    Task("cancer_mlp_bn_adam_bs16", _cancer, lambda: _mlp(30, 1, 32, norm="bn"), "adam", 16, _bce),
]


# held-out tasks: added after the suggestion rule was designed on TASKS and never used to tune it;
# different data, architectures and batch sizes. Reported separately and in the total.
def _adding() -> tuple[torch.Tensor, torch.Tensor]:
    """The adding problem: sum of the two values marked in a random sequence (regression)."""
    g = torch.Generator().manual_seed(1)
    n, t = 1500, 16
    vals = torch.rand(n, t, generator=g)
    marks = torch.zeros(n, t)
    for i in range(n):
        marks[i, torch.randperm(t, generator=g)[:2]] = 1.0
    y = (vals * marks).sum(1, keepdim=True)
    return torch.stack([vals, marks], -1), (y - y.mean()) / y.std()


class _GRURegressor(nn.Module):
    def __init__(self, hidden: int = 24) -> None:
        super().__init__()
        self.rnn = nn.GRU(2, hidden, batch_first=True)
        self.head = nn.Linear(hidden, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.rnn(x)
        return self.head(out[:, -1])


def _cnn_strided_bn() -> nn.Module:
    return nn.Sequential(
        nn.Unflatten(1, (1, 8, 8)),
        nn.Conv2d(1, 16, 3, stride=2, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
        nn.Conv2d(16, 32, 3, stride=2, padding=1), nn.BatchNorm2d(32), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, 10))


def _generated_regression() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(2)
    x = torch.randn(3000, 20, generator=g)
    w = torch.randn(20, 1, generator=g)
    y = torch.sin(x @ w / 2) + 0.5 * (x[:, :1] * x[:, 1:2]) + 0.1 * torch.randn(3000, 1, generator=g)
    return x, (y - y.mean()) / y.std()


HELDOUT = [
    Task("adding_gru_adam_bs64", _adding, _GRURegressor, "adam", 64, nn.functional.mse_loss),
    Task("digits_cnn_bn_adam_bs128", _digits, _cnn_strided_bn, "adam", 128, nn.functional.cross_entropy),
    Task("genreg_widemlp_sgd_bs32", _generated_regression, lambda: _mlp(20, 1, 256), "sgd", 32,
         nn.functional.mse_loss),
]


def _optimizer(kind: str, model: nn.Module, lr: float) -> torch.optim.Optimizer:
    if kind == "adam":
        return torch.optim.Adam(model.parameters(), lr=lr)
    return torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9 if kind == "sgd" else 0.0)


def _loader(x: torch.Tensor, y: torch.Tensor, bs: int, seed: int) -> DataLoader:
    g = torch.Generator().manual_seed(seed)
    sampler = BatchSampler(RandomSampler(range(len(x)), generator=g), bs, drop_last=True)
    return DataLoader(TensorDataset(x, y), sampler=sampler, batch_size=None)


def _cycle(loader: DataLoader):
    while True:
        yield from loader


# ---------------------------------------------------------------------------------- grid
def grid_score(task: Task, x: torch.Tensor, y: torch.Tensor, lr: float, seed: int) -> float:
    torch.manual_seed(seed)
    model = task.model()
    opt = _optimizer(task.optimizer, model, lr)
    batches = _cycle(_loader(x, y, task.batch_size, seed))
    tail: list[float] = []
    first = None
    for i in range(task.steps):
        xb, yb = next(batches)
        loss = task.loss(model(xb), yb)
        v = float(loss.detach())
        first = v if first is None else first
        if not math.isfinite(v) or v > 100 * max(first, 1e-3):
            return math.inf
        if i >= task.steps - task.steps // 10:
            tail.append(v)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return sum(tail) / len(tail)


# ---------------------------------------------------------------------------------- finders
def torch_lr_finder_suggestion(task: Task, x: torch.Tensor, y: torch.Tensor, seed: int) -> float | None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        from torch_lr_finder import LRFinder
    except ImportError:
        return None
    torch.manual_seed(seed)
    model = task.model()
    opt = _optimizer(task.optimizer, model, 1e-7)
    finder = LRFinder(model, opt, task.loss, device="cpu")
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        finder.range_test(_loader(x, y, task.batch_size, seed), start_lr=1e-7, end_lr=10, num_iter=100)
        try:
            _, lr = finder.plot(skip_start=10, skip_end=5, suggest_lr=True)
        except Exception:
            lr = None
    import matplotlib.pyplot as plt

    plt.close("all")
    return float(lr) if lr is not None else None


def sweep(task: Task, x: torch.Tensor, y: torch.Tensor, seed: int, repeats: int = REPEATS):
    torch.manual_seed(seed)
    model = task.model()
    opt = _optimizer(task.optimizer, model, 1e-3)
    return lr_range_test(model, opt, lambda b: task.loss(model(b[0]), b[1]),
                         _loader(x, y, task.batch_size, seed), repeats=repeats)


def _measure(task: Task, x: torch.Tensor, y: torch.Tensor, seeds: list[int], cache: str | None,
             repeats: int = REPEATS) -> dict:
    """Grid scores per seed and sweep curves per seed (neither depends on the suggestion rule).

    With ``cache`` the measurements are read from / written to ``cache/<task>.json``, so the
    suggestion rules can be re-scored offline in seconds.
    """
    path = os.path.join(cache, f"{task.name}.json") if cache else None
    data: dict = {"grid": {}, "sweeps": {}}
    if path and os.path.exists(path):
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    changed = False
    for s in seeds:
        key = str(s)
        if key not in data["grid"]:
            data["grid"][key] = [grid_score(task, x, y, lr, s) for lr in GRID]
            changed = True
        if key not in data["sweeps"] or len(data["sweeps"][key].get("runs", [])) < repeats:
            res = sweep(task, x, y, s, repeats)
            old = data["sweeps"].get(key, {})
            tlf = old["torch-lr-finder"] if "torch-lr-finder" in old else torch_lr_finder_suggestion(task, x, y, s)
            data["sweeps"][key] = {"runs": [{"lrs": sw["lrs"], "raw": sw["raw_losses"], "smooth": sw["losses"]}
                                            for sw in res.sweeps],
                                   "torch-lr-finder": tlf}
            changed = True
    if path and changed:
        os.makedirs(cache, exist_ok=True)
        with open(path, "w", encoding="utf-8") as fh:
            json.dump(data, fh, default=lambda v: None if isinstance(v, float) and not math.isfinite(v) else v)
    for per_seed in data["grid"].values():  # JSON null = a diverged run
        per_seed[:] = [math.inf if v is None else v for v in per_seed]
    return data


#: short labels of the rules in the per-task lines
LABELS = {"nndoctor": "nndo", "nndoctor-1": "nnd1", "lightning": "ligh", "lightning-2": "lig2",
          "fastai": "fast", "fastai-2": "fas2", "torch-lr-finder": "torc"}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--json", help="write all curves and results to this file")
    ap.add_argument("--quick", action="store_true", help="first 4 tasks, 1 seed (smoke test)")
    ap.add_argument("--tasks", help="comma-separated task names")
    ap.add_argument("--cache", metavar="DIR",
                    help="read/write grid scores and sweep curves per task here (re-score rules offline)")
    ap.add_argument("--no-heldout", action="store_true", help="reference tasks only")
    ap.add_argument("--repeats", type=int, default=REPEATS,
                    help=f"sweeps per nndoctor range test ({REPEATS}, as `nndoctor lr-find`)")
    ns = ap.parse_args()
    torch.set_num_threads(1)
    tasks = TASKS[:4] if ns.quick else TASKS + ([] if ns.no_heldout else HELDOUT)
    if ns.tasks:
        tasks = [t for t in TASKS + HELDOUT if t.name in ns.tasks.split(",")]
    heldout_names = {t.name for t in HELDOUT}
    seeds = [0] if ns.quick else [0, 1, 2]
    rules = ("nndoctor", "nndoctor-1", "lightning", "lightning-2", "fastai", "fastai-2", "torch-lr-finder")
    groups = ("reference", "held-out")
    hits = {g: {r: 0 for r in rules} for g in groups}
    band_hits = {g: {r: 0 for r in rules} for g in groups}
    cases = {g: 0 for g in groups}
    # per task (the "share of tasks"): the median over seeds of each rule's suggestion
    task_hits = {g: {r: 0 for r in rules} for g in groups}
    task_count = {g: 0 for g in groups}
    out: dict[str, object] = {"grid": GRID, "tasks": {}}
    t0, c0 = time.perf_counter(), time.process_time()
    for task in tasks:
        group = "held-out" if task.name in heldout_names else "reference"
        x, y = task.data()
        data = _measure(task, x, y, seeds, ns.cache, ns.repeats)
        scores = [sum(data["grid"][str(s)][k] for s in seeds) / len(seeds) for k in range(len(GRID))]
        best = GRID[int(np.argmin(scores))]
        band = [lr for lr, sc in zip(GRID, scores) if sc <= 1.1 * min(scores) + 1e-3]
        rec: dict[str, object] = {"grid_scores": scores, "grid_best": best, "band": [min(band), max(band)],
                                  "group": group, "seeds": {}}
        tag = " (held-out)" if group == "held-out" else ""
        line = [f"{task.name + tag:<37} best {best:8.2g} band [{min(band):.2g}, {max(band):.2g}]"]
        for s in seeds:
            sw = data["sweeps"][str(s)]
            runs = [{"lrs": r["lrs"], "raw": [math.nan if v is None else v for v in r["raw"]],
                     "smooth": [math.nan if v is None else v for v in r["smooth"]]}
                    for r in sw["runs"][:ns.repeats]]
            lrs, raw, smooth = runs[0]["lrs"], runs[0]["raw"], runs[0]["smooth"]  # the first sweep
            sugg = {
                # nndoctor's range test: its sweeps (REPEATS) combined by combine_sweeps
                "nndoctor": combine_sweeps([{"suggested_lr": suggest_lr(r["lrs"], r["raw"])[0], "reason": ""}
                                            for r in runs])[0],
                "nndoctor-1": suggest_lr(lrs, raw)[0],
                "lightning": lightning_steepest(lrs, smooth),
                # the other rules combined over the same sweeps the way nndoctor combines its own
                "lightning-2": geometric_mean(lightning_steepest(r["lrs"], r["smooth"]) for r in runs),
                "fastai": fastai_valley(lrs, smooth),
                "fastai-2": geometric_mean(fastai_valley(r["lrs"], r["smooth"]) for r in runs),
                "torch-lr-finder": sw["torch-lr-finder"],
            }
            cases[group] += 1
            ratios = {}
            for r, v in sugg.items():
                ratio = v / best if v else math.nan
                ratios[r] = ratio
                if v and 1 / 3 <= ratio <= 3:
                    hits[group][r] += 1
                if v and min(band) / 2 <= v <= max(band) * 2:
                    band_hits[group][r] += 1
            rec["seeds"][str(s)] = {"lrs": lrs, "raw": raw, "smooth": smooth,
                                    "suggestions": sugg, "ratios": ratios}
            line.append(" | s" + str(s) + " " + " ".join(f"{LABELS[r]}={ratios[r]:6.2f}" for r in rules))
        task_count[group] += 1
        for r in rules:
            vals = sorted(rec["seeds"][str(s)]["suggestions"][r] or math.inf for s in seeds)
            med = vals[len(vals) // 2]
            if math.isfinite(med) and 1 / 3 <= med / best <= 3:
                task_hits[group][r] += 1
        out["tasks"][task.name] = rec
        print("".join(line), flush=True)
    total = sum(cases.values())
    print(f"\nshare within 3x of grid-best ({len(tasks)} tasks, {len(seeds)} seeds; "
          f"{time.perf_counter() - t0:.0f}s wall, {time.process_time() - c0:.0f}s CPU):")
    for g in (*groups, "total"):
        n = total if g == "total" else cases[g]
        if not n:
            continue
        print(f" {g} ({n} cases):")
        for r in rules:
            h = sum(hits[k][r] for k in groups) if g == "total" else hits[g][r]
            b = sum(band_hits[k][r] for k in groups) if g == "total" else band_hits[g][r]
            th = sum(task_hits[k][r] for k in groups) if g == "total" else task_hits[g][r]
            tn = sum(task_count.values()) if g == "total" else task_count[g]
            print(f"  {r:<16} {h:3d}/{n} = {100 * h / n:5.1f}%   tasks (median over seeds) {th:2d}/{tn} "
                  f"= {100 * th / tn:5.1f}%   "
                  f"(inside the near-optimal band, 2x margin: {100 * b / n:5.1f}%)")
    out["cases"] = {**cases, "total": total}
    out["share_within_3x"] = {r: sum(hits[g][r] for g in groups) / max(total, 1) for r in rules}
    out["share_in_band"] = {r: sum(band_hits[g][r] for g in groups) / max(total, 1) for r in rules}
    out["share_within_3x_by_group"] = {g: {r: hits[g][r] / cases[g] for r in rules} for g in groups if cases[g]}
    out["share_of_tasks_within_3x"] = {r: sum(task_hits[g][r] for g in groups) / max(sum(task_count.values()), 1)
                                       for r in rules}
    if ns.json:
        with open(ns.json, "w", encoding="utf-8") as fh:
            json.dump(out, fh, default=lambda v: None if isinstance(v, float) and not math.isfinite(v) else v)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
