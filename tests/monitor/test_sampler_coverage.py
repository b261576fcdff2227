"""data.sampler-covers-few-samples: a loader that draws a handful of samples of a large dataset;
per-sample weights, one batch reused on purpose, tiny datasets, short runs and datasets of few
distinct rows stay quiet (or info)."""

from __future__ import annotations

from typing import Callable, Iterator

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, Sampler, SubsetRandomSampler, TensorDataset, WeightedRandomSampler

from nndoctor.findings import Severity
from nndoctor.monitor import Observer
from nndoctor.monitor.checks.data.sample import DataCollector
from nndoctor.monitor.checks.data.sampler import SamplerCoverage, expected_distinct

CODE = "data.sampler-covers-few-samples"


def _data(n: int = 800, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 10, generator=g)
    y = (x[:, 0] > 0.8).long() + (x[:, 1] > 1.2).long()
    return x, y


def _observe(fn: Callable[[], None]) -> list:
    torch.manual_seed(0)
    with Observer(checks=[DataCollector, SamplerCoverage]) as obs:
        fn()
    assert not obs.internal_errors, obs.internal_errors
    return [f for f in obs.findings if f.code == CODE]


def _train(loader: DataLoader, epochs: int = 3, adam: bool = True) -> None:
    model = nn.Sequential(nn.Linear(10, 16), nn.ReLU(), nn.Linear(16, 3))
    opt = torch.optim.Adam(model.parameters(), 1e-2) if adam else torch.optim.SGD(model.parameters(), 0.1)
    for _ in range(epochs):
        for xb, yb in loader:
            opt.zero_grad()
            F.cross_entropy(model(xb), yb).backward()
            opt.step()


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(10, 16), nn.Linear(16, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(torch.relu(self.fc1(x)))


class FirstFew(Sampler[int]):
    """A custom sampler with an off-by-scale bug: len(dataset) draws from the first 5 indices."""

    def __init__(self, n: int) -> None:
        self.n = n

    def __iter__(self) -> Iterator[int]:
        return iter([i % 5 for i in range(self.n)])

    def __len__(self) -> int:
        return self.n


def test_per_class_weights_in_a_weighted_sampler_is_a_warning():
    x, y = _data()

    def run():
        w = 1.0 / torch.bincount(y).float()  # one weight per class
        loader = DataLoader(TensorDataset(x, y), batch_size=32, sampler=WeightedRandomSampler(w, len(y)))
        _train(loader)

    hits = _observe(run)
    assert len(hits) == 1 and hits[0].severity is Severity.WARNING
    ev = hits[0].evidence
    assert ev["distinct_samples"] == 3 and ev["sampler_reach"] == 3 and ev["dataset_len"] == 800
    assert "WeightedRandomSampler" in hits[0].message


def test_subset_sampler_over_the_class_ids_in_a_subclass_with_sgd():
    x, y = _data(600, seed=1)

    def main():
        ds = TensorDataset(x, y)
        loader = DataLoader(ds, batch_size=20, sampler=SubsetRandomSampler(y.unique().tolist() * 20))
        model = Net()
        opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        for _ in range(6):
            for xb, yb in loader:
                loss = nn.CrossEntropyLoss()(model(xb), yb)
                opt.zero_grad()
                loss.backward()
                opt.step()

    hits = _observe(main)
    assert len(hits) == 1 and hits[0].severity is Severity.WARNING
    assert hits[0].evidence["sampler"] == "SubsetRandomSampler"


def test_custom_sampler_is_confirmed_by_the_dataset_rows():
    x, y = _data(500, seed=2)
    hits = _observe(lambda: _train(DataLoader(TensorDataset(x, y), batch_size=25, sampler=FirstFew(500)),
                                   adam=False))
    assert len(hits) == 1 and hits[0].severity is Severity.WARNING
    assert hits[0].evidence["dataset_distinct_rows"] == 500 and hits[0].evidence["sampler_reach"] is None


def test_per_sample_weights_with_a_rare_class_are_quiet():
    x, y = _data()

    def run():
        w = (1.0 / torch.bincount(y).float())[y]
        _train(DataLoader(TensorDataset(x, y), batch_size=32, sampler=WeightedRandomSampler(w, len(y))))

    assert _observe(run) == []


def test_one_batch_reused_on_purpose_is_quiet():
    x, y = _data()

    def run():
        loader = DataLoader(TensorDataset(x, y), batch_size=8, shuffle=True)
        xb, yb = next(iter(loader))
        model = Net()
        opt = torch.optim.Adam(model.parameters(), 1e-2)
        for _ in range(40):
            opt.zero_grad()
            F.cross_entropy(model(xb), yb).backward()
            opt.step()

    assert _observe(run) == []


class Rows(torch.utils.data.Dataset):
    """A map-style dataset of its own (no tensors to count distinct rows in)."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor) -> None:
        self.x, self.y = x, y

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.x[i], self.y[i]


def _fresh_iterator_each_step(loader: DataLoader, steps: int) -> None:
    model = Net()
    opt = torch.optim.Adam(model.parameters(), 1e-2)
    for _ in range(steps):
        xb, yb = next(iter(loader))
        opt.zero_grad()
        F.cross_entropy(model(xb), yb).backward()
        opt.step()


@pytest.mark.parametrize("style", ["tensor_dataset", "subset", "own_dataset"])
def test_a_new_iterator_per_batch_without_shuffling_is_a_warning(style):
    """``xb, yb = next(iter(loader))`` inside the loop over an unshuffled loader: the same first batch
    at every step (the iterator is gone by the forward: sampler and dataset come from the loader)."""
    x, y = _data()
    ds = {"tensor_dataset": lambda: TensorDataset(x, y),
          "subset": lambda: torch.utils.data.Subset(TensorDataset(x, y), range(700)),
          "own_dataset": lambda: Rows(x, y)}[style]()

    found = _observe(lambda: _fresh_iterator_each_step(DataLoader(ds, batch_size=8), 300))
    assert len(found) == 1 and found[0].severity is Severity.WARNING, found
    assert found[0].evidence["new_iterator_per_batch"] is True and "next(iter(loader))" in found[0].message


def test_a_new_iterator_per_batch_with_shuffling_is_quiet():
    """The same idiom over a shuffled loader draws a fresh random batch each step."""
    x, y = _data()

    assert _observe(lambda: _fresh_iterator_each_step(DataLoader(TensorDataset(x, y), batch_size=16,
                                                                  shuffle=True), 150)) == []


@pytest.mark.parametrize("case", ["tiny", "short", "shuffled", "few_distinct_rows"])
def test_lookalikes_are_quiet(case):
    x, y = _data()
    if case == "tiny":
        loader = DataLoader(TensorDataset(x[:40], y[:40]), batch_size=8, shuffle=True)
        epochs = 10
    elif case == "short":
        loader = DataLoader(TensorDataset(x, y), batch_size=16, shuffle=True)
        epochs = 1
    elif case == "shuffled":
        loader = DataLoader(TensorDataset(x, y), batch_size=32, shuffle=True)
        epochs = 3
    else:  # the XOR table repeated: few distinct rows in a large dataset, sampled uniformly
        base = torch.tensor([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]]).repeat(200, 1)
        loader = DataLoader(TensorDataset(torch.cat([base, base.new_zeros(800, 8)], 1), y), batch_size=32,
                            shuffle=True)
        epochs = 3
    hits = [f for f in _observe(lambda: _train(loader, epochs)) if f.severity is not Severity.INFO]
    assert hits == []


def test_expected_distinct():
    assert expected_distinct(0, 100) == 0.0
    assert 60 < expected_distinct(100, 100) < 65
    assert expected_distinct(10_000, 100) == pytest.approx(100, abs=1e-6)


def test_subset_of_repeated_indices_is_confirmed_by_its_indices():
    x, y = _data(600, seed=3)

    def run():
        from torch.utils.data import Subset
        ds = Subset(TensorDataset(x, y), [0, 1, 2, 3] * 100)  # meant: range(400)
        _train(DataLoader(ds, batch_size=20, shuffle=True))

    hits = _observe(run)
    assert len(hits) == 1 and hits[0].severity is Severity.WARNING
    assert hits[0].evidence["sampler_reach"] == 4 and hits[0].evidence["sampler"].startswith("Subset")


def test_a_list_dataset_with_a_per_class_weighted_sampler():
    """A plain list as the dataset (no weak reference possible): still judged from the sampler."""
    x, y = _data(300, seed=4)

    def run():
        rows = [(x[i], y[i]) for i in range(300)]
        w = 1.0 / torch.bincount(y).float()
        _train(DataLoader(rows, batch_size=20, sampler=WeightedRandomSampler(w, 300)))

    hits = _observe(run)
    assert len(hits) == 1 and hits[0].severity is Severity.WARNING
