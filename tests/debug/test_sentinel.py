"""preprocessing.sentinel-values: a missing-value code left in the table before scaling; genuine
heavy tails, one-hot, sparse counts, standardised data, clipped features and images stay quiet."""

from __future__ import annotations

from typing import Callable

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

from nndoctor.debug.sentinel import SentinelValues, squashed_columns
from nndoctor.findings import Severity
from nndoctor.monitor import Observer

CODE = "preprocessing.sentinel-values"


def _table(seed: int = 0, n: int = 600, d: int = 6) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d))
    y = (x[:, 0] + x[:, 1] > 0).astype(np.int64)
    return x, y


def _minmax(x: np.ndarray) -> np.ndarray:
    return (x - x.min(0)) / (x.max(0) - x.min(0))


def _standard(x: np.ndarray) -> np.ndarray:
    return (x - x.mean(0)) / x.std(0)


def _observe(fn: Callable[[], None]) -> list:
    torch.manual_seed(0)
    with Observer(checks=[SentinelValues]) as obs:
        fn()
    assert not obs.internal_errors, obs.internal_errors
    return [f for f in obs.findings if f.code == CODE]


def _sequential_adam(x: np.ndarray, y: np.ndarray) -> Callable[[], None]:
    def run():
        xt, yt = torch.tensor(x, dtype=torch.float32), torch.tensor(y)
        model = nn.Sequential(nn.Linear(x.shape[1], 16), nn.ReLU(), nn.Linear(16, 2))
        opt = torch.optim.Adam(model.parameters(), lr=1e-2)
        for _epoch in range(2):
            perm = torch.randperm(len(xt))
            for i in range(0, len(xt), 50):
                b = perm[i:i + 50]
                opt.zero_grad()
                nn.CrossEntropyLoss()(model(xt[b]), yt[b]).backward()
                opt.step()
    return run


class Net(nn.Module):
    def __init__(self, d: int) -> None:
        super().__init__()
        self.body = nn.Linear(d, 16)
        self.out = nn.Linear(16, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(torch.tanh(self.body(x))).squeeze(1)


def _subclass_sgd_loader(x: np.ndarray, y: np.ndarray) -> Callable[[], None]:
    def main():
        ds = TensorDataset(torch.tensor(x, dtype=torch.float32), torch.tensor(y, dtype=torch.float32))
        model = Net(x.shape[1])
        opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
        for _epoch in range(2):
            for xb, yb in DataLoader(ds, batch_size=32, shuffle=True):
                opt.zero_grad()
                F.binary_cross_entropy_with_logits(model(xb), yb).backward()
                opt.step()
        with torch.no_grad():
            model(ds.tensors[0])
    return main


def test_99999_code_before_minmax_is_caught_in_a_sequential_with_adam():
    x, y = _table()
    holes = np.random.default_rng(1).random(x.shape) < 0.02
    x[holes] = 99999.0
    hits = _observe(_sequential_adam(_minmax(x), y))
    assert len(hits) == 1 and hits[0].severity is Severity.WARNING
    f = hits[0]
    assert set(f.evidence["columns"]) == set(range(6)) and f.evidence["value"] == 1.0
    assert f.evidence["bulk_fraction"] < 1e-3 and f.location == "model"


def test_minus_999_code_before_standardising_in_a_subclass_with_a_loader():
    x, y = _table(seed=3, n=500, d=5)
    x[np.random.default_rng(2).random(500) < 0.03, 2] = -999.0
    hits = _observe(_subclass_sgd_loader(_standard(x), y))
    assert len(hits) == 1 and hits[0].severity is Severity.WARNING
    assert hits[0].evidence["columns"] == [2] and hits[0].evidence["value"] < -3


def test_sentinel_in_a_feature_sequence():
    rng = np.random.default_rng(4)
    x = rng.normal(size=(200, 10, 4))
    x[rng.random((200, 10)) < 0.01, 3] = 9999.0
    x = x / np.abs(x).reshape(-1, 4).max(0)
    verdict = squashed_columns(x.reshape(-1, 4))
    assert list(verdict) == [3] and verdict[3]["sentinel"]


@pytest.mark.parametrize("kind", ["lognormal", "onehot", "sparse_counts", "standardised", "clipped",
                                  "zero_inflated"])
def test_genuine_features_stay_quiet(kind):
    rng = np.random.default_rng(5)
    n = 600
    x, y = _table(seed=5, n=n, d=4)
    if kind == "lognormal":
        x = np.c_[x, rng.lognormal(10.5, 1.0, n)]  # incomes
        x = _minmax(x)
    elif kind == "onehot":
        x = np.c_[x, np.eye(12)[rng.integers(0, 12, n)], (rng.random(n) < 0.004).astype(float)]
    elif kind == "sparse_counts":
        x = np.c_[x, rng.poisson(0.05, (n, 3)), rng.negative_binomial(1, 0.3, n)]
    elif kind == "standardised":
        x = _standard(np.c_[x, rng.exponential(1.0, n)])
    elif kind == "clipped":
        x = _minmax(np.c_[x, np.clip(rng.normal(size=n), -1.0, 1.0)])
    else:
        x = _minmax(np.c_[x, np.where(rng.random(n) < 0.25, 0.0, rng.gamma(2.0, 3.0, n))])
    assert [f for f in _observe(_sequential_adam(x, y)) if f.severity is not Severity.INFO] == []


def test_saturated_images_are_not_tables():
    def run():
        g = torch.Generator().manual_seed(0)
        imgs = torch.rand(64, 1, 12, 12, generator=g)
        imgs[imgs > 0.7] = 1.0
        model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.Flatten(), nn.Linear(4 * 10 * 10, 2))
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        for _i in range(8):
            opt.zero_grad()
            F.cross_entropy(model(imgs), torch.randint(0, 2, (64,), generator=g)).backward()
            opt.step()

    assert _observe(run) == []


def test_isolated_extreme_outliers_are_only_info():
    rng = np.random.default_rng(6)
    col = rng.normal(size=2000)
    col[[3, 400, 900]] = [5e4, 7e4, 9e4]  # three different outliers, no repeated code
    verdict = squashed_columns(col[:, None])
    assert not verdict[0]["sentinel"]
    pareto = rng.pareto(3.0, (2000, 1))  # a genuine heavy tail: the bulk spans > 1% of the range
    assert squashed_columns(pareto) == {}


def test_plain_columns_are_ruled_out_together_and_verdicts_are_the_per_column_ones(monkeypatch):
    """Continuous columns with no repeated extreme and a wide bulk are told apart for the whole table at
    once: the per-column test (a sort for the distinct values, a quantile) runs only on the others, with
    the verdicts it gave on every column (codes, outliers, one-hot, counts, constant, NaN)."""
    import nndoctor.debug.sentinel as sentinel

    rng = np.random.default_rng(7)
    n = 1000
    cols = [rng.normal(size=n), rng.lognormal(10.5, 1.0, n), rng.exponential(1.0, n),
            np.eye(5)[rng.integers(0, 5, n)][:, 0], rng.poisson(0.05, n).astype(float), np.full(n, 2.0)]
    coded = rng.normal(size=n)
    coded[rng.random(n) < 0.01] = 99999.0
    outliers = rng.normal(size=n)
    outliers[[3, 400, 900]] = [5e4, 7e4, 9e4]
    nan = rng.normal(size=n)
    nan[5] = np.nan
    table = np.c_[tuple(cols) + (coded, outliers, nan)].astype(np.float32)
    expected = {}
    for j in range(table.shape[1]):
        v = table[:, j][np.isfinite(table[:, j])]
        verdict = sentinel._column(v)
        if verdict is not None:
            expected[j] = verdict
    calls: list[int] = []
    real = sentinel._column
    monkeypatch.setattr(sentinel, "_column", lambda v: calls.append(1) or real(v))
    assert squashed_columns(table) == expected and sorted(expected) == [6, 7]
    assert len(calls) < table.shape[1] - 2  # (the normal, exponential and log-normal columns: ruled out at once)
    calls.clear()
    assert squashed_columns(rng.normal(size=(4096, 16)).astype(np.float32)) == {} and calls == []
