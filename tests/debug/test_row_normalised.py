"""preprocessing.rows-normalised-instead-of-columns: tabular features on different scales standardised per row
(numpy axis=1 at load time, torch per batch in the loop, per sample in a Dataset's __getitem__) or L2-normalised
per row (sklearn normalize), named; per-column standardisation, per-window standardised signals and unit-norm
bag-of-words rows quiet."""

from __future__ import annotations

from typing import Callable, Iterator

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from sklearn.datasets import load_breast_cancer, load_wine
from sklearn.preprocessing import normalize
from torch.utils.data import DataLoader, Dataset

from nndoctor.debug.row_normalised import RowNormalisedFeatures, row_normalisation
from nndoctor.monitor import Observer, Schedule
from tests.helpers import assert_script_headline, run_script

CODE = "preprocessing.rows-normalised-instead-of-columns"
BC_X, BC_Y = load_breast_cancer(return_X_y=True)


def _observe(batches: Callable[[], Iterator], features: int) -> list:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(features, 16), nn.ReLU(), nn.Linear(16, 3))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    with Observer(checks=[RowNormalisedFeatures], schedule=Schedule(dense=4, every=2)) as obs:
        for _ in range(2):
            for xb, yb in batches():
                opt.zero_grad()
                F.cross_entropy(model(xb), yb).backward()
                opt.step()
    assert not obs.internal_errors, obs.internal_errors
    return [f for f in obs.findings if f.code == CODE]


def _slices(x: np.ndarray | torch.Tensor, y: np.ndarray, transform: Callable = lambda b: b) -> Callable:
    xt = torch.as_tensor(x, dtype=torch.float32)
    yt = torch.as_tensor(y)
    return lambda: ((transform(xt[i:i + 32]), yt[i:i + 32]) for i in range(0, 320, 32))


class _PerSample(Dataset):
    def __len__(self) -> int:
        return 320

    def __getitem__(self, i: int):
        x = torch.tensor(BC_X[i], dtype=torch.float32)
        return (x - x.mean()) / x.std(), int(BC_Y[i])          # each sample standardised on its own


_FAULTS = {
    "numpy-axis1-at-load": _slices((BC_X - BC_X.mean(1, keepdims=True)) / BC_X.std(1, keepdims=True), BC_Y),
    "torch-per-batch-in-loop": _slices(BC_X, BC_Y, lambda b: (b - b.mean(1, keepdim=True)) / b.std(1, keepdim=True)),
    "dataset-per-sample": lambda: DataLoader(_PerSample(), batch_size=32, shuffle=True),
    "sklearn-normalize": _slices(normalize(BC_X), BC_Y),
}


@pytest.mark.parametrize("name", list(_FAULTS))
def test_rows_normalised_on_features_of_different_scales_are_named(name):
    found = _observe(_FAULTS[name], 30)
    assert len(found) == 1, found
    f = found[0]
    assert f.category == "preprocessing" and f.evidence["dominant_feature"] == 23   # "worst area"
    assert f.evidence["dominant_share"] >= 0.5


def test_wine_rows_standardised_are_named():
    x, y = load_wine(return_X_y=True)
    p = np.random.default_rng(0).permutation(len(x))
    x, y = x[p], y[p]
    found = _observe(_slices((x - x.mean(1, keepdims=True)) / x.std(1, keepdims=True), y), 13)
    assert len(found) == 1 and found[0].evidence["dominant_feature"] == 12   # proline


def _signals() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    t = np.linspace(0, 6, 40)
    y = rng.integers(0, 2, 320)
    s = np.sin(t * (1 + y[:, None])) * rng.uniform(0.5, 2, (320, 1)) + rng.normal(0, 0.2, (320, 40))
    return (s - s.mean(1, keepdims=True)) / s.std(1, keepdims=True), y


def _bag_of_words() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(1)
    counts = rng.poisson(0.3, (320, 50)).astype(float)
    counts[:, 0] += 1                                           # no empty row
    return normalize(counts), rng.integers(0, 2, 320)


@pytest.mark.parametrize("data,features", [
    (((BC_X - BC_X.mean(0)) / BC_X.std(0), BC_Y), 30),
    (_signals(), 40),
    (_bag_of_words(), 50),
    ((BC_X / 1000.0, BC_Y), 30),
], ids=["columns-standardised", "per-window-signals", "l2-bag-of-words", "raw-scaled"])
def test_right_axis_and_per_row_signals_are_quiet(data, features):
    assert _observe(_slices(*data), features) == []


def test_row_normalisation_kinds():
    assert row_normalisation(torch.tensor(_signals()[0][:8])) == "mean 0 / std 1"
    assert row_normalisation(torch.tensor(normalize(BC_X[:8]))) == "unit L2 norm"
    assert row_normalisation(torch.tensor(BC_X[:8] / BC_X[:8].sum(1, keepdims=True))) == "unit L1 norm"
    assert row_normalisation(torch.tensor((BC_X[:8] - BC_X.mean(0)) / BC_X.std(0))) is None


_SCRIPT = '''
import numpy as np, torch, torch.nn as nn
from sklearn.datasets import load_breast_cancer
torch.manual_seed(0)
X, y = load_breast_cancer(return_X_y=True)
X = (X - X.mean(axis=AXIS, keepdims=True)) / X.std(axis=AXIS, keepdims=True)
X = torch.tensor(X, dtype=torch.float32); y = torch.tensor(y)
model = nn.Sequential(nn.Linear(30, 32), nn.ReLU(), nn.Linear(32, 2))
opt = torch.optim.Adam(model.parameters(), lr=1e-3)
for epoch in range(3):
    perm = torch.randperm(450)
    for i in range(0, 450, 32):
        b = perm[i:i + 32]
        opt.zero_grad(); nn.functional.cross_entropy(model(X[b]), y[b]).backward(); opt.step()
'''


@pytest.mark.parametrize("axis,expected", [("1", True), ("0", False)], ids=["rows", "columns"])
def test_script_headline(tmp_path, axis, expected):
    result = run_script(tmp_path, _SCRIPT.replace("AXIS", axis))
    assert_script_headline(result, CODE, expected, "preprocessing")
