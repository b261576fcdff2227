"""data.train-test-leakage by index: an evaluation split selecting training examples by index (Subset slices that
overlap, random_split drawn twice, SubsetRandomSampler lists that share entries, a validation Subset inside the
training Subset), named; one random_split, disjoint samplers, k-fold loops, a training-accuracy Subset of the
training split and another dataset quiet."""

from __future__ import annotations

from typing import Callable

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, Subset, SubsetRandomSampler, TensorDataset, random_split

from nndoctor.monitor import Observer, Schedule
from nndoctor.monitor.checks.data.split_overlap import SplitIndexOverlap, split_indices
from tests.helpers import run_script

CODE = "data.train-test-leakage"
_G = torch.Generator().manual_seed(0)
X = torch.randn(400, 6, generator=_G)
Y = (X[:, 0] > 0).long()
DS = TensorDataset(X, Y)
PERM = torch.randperm(400, generator=_G).tolist()


def _observe(make: Callable[[], list[tuple[DataLoader, DataLoader]]], schedule: Schedule | None = None) -> list:
    """``make`` gives (training loader, evaluation loader) per fold; each fold trains 2 epochs, evaluating after each."""
    torch.manual_seed(0)
    with Observer(checks=[SplitIndexOverlap], schedule=schedule or Schedule(dense=4, every=2)) as obs:
        for train, val in make():
            model = nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 2))
            opt = torch.optim.SGD(model.parameters(), lr=0.1)
            for _ in range(2):
                for xb, yb in train:
                    opt.zero_grad()
                    F.cross_entropy(model(xb), yb).backward()
                    opt.step()
                with torch.no_grad():
                    for xb, _ in val:
                        model(xb)
    assert not obs.internal_errors, obs.internal_errors
    return [f for f in obs.findings if f.code == CODE]


def _loaders(train, val, **kw) -> list[tuple[DataLoader, DataLoader]]:
    return [(DataLoader(train, batch_size=32, shuffle="sampler" not in kw, sampler=kw.get("sampler")),
             DataLoader(val, batch_size=64, sampler=kw.get("val_sampler")))]


def _random_split_twice():
    train, _ = random_split(DS, [300, 100], generator=torch.Generator().manual_seed(1))
    _, val = random_split(DS, [300, 100], generator=torch.Generator().manual_seed(2))   # another draw
    return _loaders(train, val)


_FAULTS = {
    "overlapping-subset-slices": lambda: _loaders(Subset(DS, PERM[:300]), Subset(DS, PERM[250:])),
    "val-inside-train": lambda: _loaders(Subset(DS, PERM[:350]), Subset(DS, PERM[250:350])),
    "random-split-twice": _random_split_twice,
    "subset-random-samplers": lambda: _loaders(DS, DS, sampler=SubsetRandomSampler(PERM[:320]),
                                               val_sampler=SubsetRandomSampler(PERM[300:])),
}


@pytest.mark.parametrize("name", list(_FAULTS))
def test_evaluation_indices_shared_with_training_are_named(name):
    found = _observe(_FAULTS[name])
    assert found, name
    assert found[0].category == "data" and found[0].evidence["n_shared"] >= 3
    assert found[0].evidence["how_detected"].startswith("Subset")


def _kfold():
    folds = [PERM[i::4] for i in range(4)]
    out = []
    for k in range(4):
        train_idx = [i for j, f in enumerate(folds) if j != k for i in f]
        out += _loaders(Subset(DS, train_idx), Subset(DS, folds[k]))
    return out


def _one_random_split():
    train, val = random_split(DS, [300, 100], generator=torch.Generator().manual_seed(1))
    return _loaders(train, val)


@pytest.mark.parametrize("make", [
    _one_random_split,
    lambda: _loaders(DS, DS, sampler=SubsetRandomSampler(PERM[:300]), val_sampler=SubsetRandomSampler(PERM[300:])),
    _kfold,
    lambda: [(DataLoader(t := Subset(DS, PERM[:300]), batch_size=32, shuffle=True),
              DataLoader(Subset(t, range(100)), batch_size=64))],          # training accuracy on purpose
    lambda: [(DataLoader(t := Subset(DS, PERM[:300]), batch_size=32, shuffle=True), DataLoader(t, batch_size=64))],
    lambda: _loaders(Subset(DS, PERM[:300]), TensorDataset(X[:100].clone(), Y[:100].clone())),
], ids=["one-random-split", "disjoint-samplers", "k-fold", "train-accuracy-subset", "train-split-again",
        "another-dataset"])
def test_disjoint_splits_and_training_accuracy_passes_are_quiet(make):
    assert _observe(make) == []


def test_k_fold_folds_whose_training_steps_go_unsampled_are_quiet():
    assert _observe(_kfold, Schedule(dense=3, every=1000)) == []


def test_split_indices_compose_subsets_and_samplers():
    inner = Subset(DS, list(range(100, 200)))
    root, idx, chain = split_indices(Subset(inner, [0, 5]), None)
    assert root == id(DS) and idx.tolist() == [100, 105] and chain[-1] == id(DS)
    _, idx, _ = split_indices(inner, SubsetRandomSampler([1, 2]))
    assert sorted(idx.tolist()) == [101, 102]
    assert split_indices(DS, None) is None                   # the whole dataset: no index list


_SCRIPT = '''
import torch, torch.nn as nn
from torch.utils.data import TensorDataset, DataLoader, random_split
torch.manual_seed(0)
X = torch.randn(1200, 8); y = (X[:, 0] + X[:, 1] > 0).long()
ds = TensorDataset(X, y)
train_ds, val_ds = SPLIT
model = nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Linear(32, 2))
opt = torch.optim.Adam(model.parameters(), lr=1e-3)
for epoch in range(3):
    model.train()
    for xb, yb in DataLoader(train_ds, batch_size=64, shuffle=True):
        opt.zero_grad(); nn.functional.cross_entropy(model(xb), yb).backward(); opt.step()
    model.eval(); correct = 0
    with torch.no_grad():
        for xb, yb in DataLoader(val_ds, batch_size=200):
            correct += (model(xb).argmax(1) == yb).sum().item()
    print(epoch, correct / len(val_ds))
'''


@pytest.mark.parametrize("split,expected", [
    ("random_split(ds, [1000, 200])[0], random_split(ds, [1000, 200])[1]", True),
    ("random_split(ds, [1000, 200])", False)], ids=["drawn-twice", "drawn-once"])
def test_script(tmp_path, split, expected):
    result = run_script(tmp_path, _SCRIPT.replace("SPLIT", split))
    assert (CODE in result.codes("warning")) is expected
