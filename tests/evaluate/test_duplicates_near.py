"""Near duplicates need real closeness: random continuous data has none, noisy copies are found."""

from __future__ import annotations

import textwrap

import numpy as np
import pytest

from nndoctor.cli import main
from nndoctor.evaluate.duplicates import find_duplicates, near_threshold


@pytest.mark.parametrize("dim", [2, 3, 4, 8, 32, 128])
@pytest.mark.parametrize("n", [64, 256, 2000])
def test_gaussian_noise_has_no_near_duplicates(dim, n):
    rng = np.random.default_rng(dim * 1000 + n)
    train = rng.standard_normal((n, dim)).astype(np.float32)
    other = rng.standard_normal((max(16, n // 4), dim)).astype(np.float32)
    res = find_duplicates(train, other)
    assert not res.shared and res.finding() is None


@pytest.mark.parametrize("dim", [4, 8, 32, 128])
@pytest.mark.parametrize("style", ["gaussian", "uniform-scaled"])
def test_noisy_copies_are_found(dim, style):
    rng = np.random.default_rng(dim)
    if style == "gaussian":
        train = rng.standard_normal((1000, dim)).astype(np.float32)
    else:  # features in very different units
        train = (rng.random((1000, dim)) * np.logspace(-2, 3, dim)).astype(np.float32)
    clean = rng.standard_normal((200, dim)).astype(np.float32) * train.std(0) + train.mean(0)
    copies = train[:25] + 0.002 * train.std(0) * rng.standard_normal((25, dim)).astype(np.float32)
    res = find_duplicates(train, np.concatenate([clean, copies]))
    assert not res.exact
    found = {i for i, _, _ in res.near}
    assert found == set(range(200, 225))
    assert all(j == i - 200 for i, j, _ in res.near)
    assert res.finding().severity.value == "warning"


def test_threshold_is_stricter_in_few_dimensions_and_for_many_examples():
    rng = np.random.default_rng(0)
    low = rng.standard_normal((500, 2))
    high = rng.standard_normal((500, 64))
    t_low, lim_low = near_threshold(low, 100)
    t_high, lim_high = near_threshold(high, 100)
    assert lim_low / t_low < lim_high / t_high <= 0.05 + 1e-12
    assert near_threshold(low, 10**5)[1] < lim_low


EXPERIMENT = """
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset
import nndoctor

g = torch.Generator().manual_seed(1)
X = torch.randn(320, 4, generator=g)          # 4-D Gaussian noise
Y = torch.randint(0, 2, (320,), generator=g)


def experiment() -> nndoctor.Experiment:
    model = nn.Linear(4, 2)
    return nndoctor.Experiment(model=model, loss=nn.CrossEntropyLoss(),
                               train=DataLoader(TensorDataset(X[:256], Y[:256]), batch_size=32),
                               test_val=DataLoader(TensorDataset(X[256:], Y[256:]), batch_size=32))
"""


def test_data_command_quiet_on_gaussian_noise(tmp_path):
    import json

    (tmp_path / "exp.py").write_text(textwrap.dedent(EXPERIMENT))
    out = tmp_path / "d.json"
    assert main(["data", str(tmp_path / "exp.py"), "--json", str(out)]) == 0
    codes = {f["code"] for f in json.loads(out.read_text())["findings"]}
    assert "data.train-test-leakage" not in codes
