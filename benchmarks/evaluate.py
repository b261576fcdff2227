"""Evaluate-and-improve benchmark: one row per scenario on scikit-learn digits.

Each scenario injects one known problem (or none) and checks that the decomposition's
dominant term, the data findings and the top plan item say what they should.

    python benchmarks/evaluate.py            # all scenarios
    python benchmarks/evaluate.py --filter shift
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from nndoctor.evaluate.workflow import evaluate_experiment
from nndoctor.experiment import Experiment

__all__ = ["SCENARIOS", "Scenario", "digits_experiment", "main"]


def _digits() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    perm = np.random.default_rng(0).permutation(len(y))
    return (x[perm] / 16.0).astype(np.float32), y[perm].astype(np.int64)


def _loader(x: np.ndarray, y: np.ndarray, bs: int = 64, shuffle: bool = True) -> DataLoader:
    g = torch.Generator().manual_seed(0)
    return DataLoader(TensorDataset(torch.from_numpy(x), torch.from_numpy(y)), batch_size=bs,
                      shuffle=shuffle, generator=g)


def digits_experiment(
    *, hidden: int = 64, n_train: int = 1000, noise: float = 0.0, shift: str = "", leak: int = 0,
    imbalance: float = 0.0, lr: float = 3e-3, weight_decay: float = 0.0, seed: int = 0,
) -> Experiment:
    """An MLP on digits with one injected problem."""
    torch.manual_seed(seed)
    x, y = _digits()
    rng = np.random.default_rng(seed)
    tr_x, tr_y = x[:n_train], y[:n_train].copy()
    tv_x, tv_y = x[1100:1450], y[1100:1450]
    te_x, te_y = x[1450:], y[1450:]
    if imbalance:
        keep = np.ones(len(tr_y), bool)
        for c in range(1, 10):
            idx = np.flatnonzero(tr_y == c)
            keep[idx[int(len(idx) / imbalance):]] = False
        tr_x, tr_y = tr_x[keep], tr_y[keep]
    if noise:
        flip = rng.random(len(tr_y)) < noise
        tr_y[flip] = (tr_y[flip] + rng.integers(1, 10, flip.sum())) % 10
    if shift == "invert":
        te_x = 1.0 - te_x
    if leak:
        tv_x = np.concatenate([tv_x, tr_x[:leak]])
        tv_y = np.concatenate([tv_y, tr_y[:leak]])
    if hidden:
        model: nn.Module = nn.Sequential(nn.Linear(64, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(),
                                         nn.Linear(hidden, 10))
    else:  # far too small: a 2-unit bottleneck
        model = nn.Sequential(nn.Linear(64, 2), nn.Linear(2, 10))
    return Experiment(model=model, loss=nn.CrossEntropyLoss(),
                      optimizer=torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay),
                      train=_loader(tr_x, tr_y), train_val=_loader(tv_x, tv_y, shuffle=False),
                      test_val=_loader(te_x, te_y, shuffle=False),
                      hyperparameters={"hidden": hidden or 2, "lr": lr, "weight_decay": weight_decay})


@dataclass
class Scenario:
    name: str
    make: Callable[[], Experiment]
    epochs: int
    expect_dominant: str | None
    expect_codes: tuple[str, ...]
    human_error: float = 0.0


SCENARIOS = [
    Scenario("too-small-model", lambda: digits_experiment(hidden=0), 30, "avoidable_bias", ("fit.avoidable-bias",)),
    Scenario("large-model-tiny-train", lambda: digits_experiment(hidden=512, n_train=60, lr=3e-3), 80, "variance",
             ("fit.variance",)),
    Scenario("shifted-test-val", lambda: digits_experiment(shift="invert"), 30, "distribution_shift",
             ("fit.distribution-shift", "data.distribution-shift")),
    Scenario("label-noise-30", lambda: digits_experiment(noise=0.3), 15, None, ("labels.noisy",)),
    Scenario("duplicates-across-splits", lambda: digits_experiment(leak=120), 30, None, ("data.train-test-leakage",)),
    Scenario("imbalance-20-to-1", lambda: digits_experiment(imbalance=20, n_train=1100), 30, None,
             ("data.class-imbalance",)),
    Scenario("healthy", lambda: digits_experiment(), 30, "", ()),
]


def run(scenario: Scenario) -> dict[str, object]:
    t0 = time.perf_counter()
    ev = evaluate_experiment(scenario.make(), epochs=scenario.epochs, human_error=scenario.human_error)
    dom = ev.decomposition.dominant
    warn = sorted({f.code for f in ev.findings if f.severity.value != "info"})
    terms = {t.name: round(t.value, 3) for t in ev.decomposition.terms}
    ok_dom = True
    if scenario.expect_dominant is not None:
        ok_dom = (dom.name if dom and dom.value >= 0.05 else "") == scenario.expect_dominant
    ok_codes = all(c in warn for c in scenario.expect_codes)
    if scenario.expect_dominant == "":
        ok_codes = not [c for c in warn if not c.startswith("fit.")]
    return {"scenario": scenario.name, "terms": terms, "dominant": dom.name if dom else "-", "warnings": warn,
            "top_plan": ev.plan[0].action if ev.plan else "-", "ok": ok_dom and ok_codes,
            "seconds": round(time.perf_counter() - t0, 1)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--filter", default="", help="only scenarios whose name contains this")
    ns = ap.parse_args(argv)
    torch.set_num_threads(1)
    rows = [run(s) for s in SCENARIOS if ns.filter in s.name]
    for r in rows:
        print(f"{r['scenario']:<26} ok={r['ok']!s:<5} dominant={r['dominant']:<19} terms={r['terms']}  "
              f"warnings={r['warnings']}  top plan: {r['top_plan']}  ({r['seconds']}s)")
    print(f"scenarios right {sum(bool(r['ok']) for r in rows)}/{len(rows)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
