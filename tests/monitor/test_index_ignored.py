"""data.getitem-ignores-index: a Dataset whose __getitem__ returns a constant, random or cached
example whatever the index; augmentation, samplers with replacement, discrete data and
IterableDatasets stay quiet."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset, IterableDataset, RandomSampler

from nndoctor.monitor import Observer
from nndoctor.monitor.checks.data.index_ignored import IndexIgnored

CODE = "data.getitem-ignores-index"


class Table(Dataset):
    """Rows of a table; ``mode`` says how __getitem__ picks the row."""

    def __init__(self, mode: str, n: int = 256, numpy: bool = False, discrete: bool = False) -> None:
        g = torch.Generator().manual_seed(0)
        x = torch.randint(0, 2, (n, 4), generator=g).float() if discrete else torch.randn(n, 4, generator=g)
        self.x = x.numpy() if numpy else x
        self.y = (x[:, 0] > 0).long()
        self.mode = mode
        self.cache: tuple[torch.Tensor, torch.Tensor] | None = None
        self.perm = torch.randperm(n, generator=g).tolist()

    def __len__(self) -> int:
        return len(self.y)

    def _row(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.x[i]
        return (torch.as_tensor(x), self.y[i])

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        if self.mode == "first":
            return self._row(0)                                       # debug line left in
        if self.mode == "randint":
            return self._row(random.randint(0, len(self) - 1))
        if self.mode == "torch_random":
            return self._row(int(torch.randint(len(self), ())))
        if self.mode == "cached":
            if self.cache is None:
                self.cache = self._row(i)
            return self.cache
        if self.mode == "permuted":
            return self._row(self.perm[i])                            # a fixed mapping: every index its own row
        if self.mode == "modulo":
            return self._row(i % 8)                                   # a debug subset left in
        x, y = self._row(i)
        if self.mode == "noise":
            return x + 0.3 * torch.randn_like(x), y                   # augmentation of example i
        if self.mode == "flip":
            return (x.flip(0) if random.random() < 0.5 else x), y
        return x, y


def _train(dataset: Dataset, epochs: int = 3, sampler: object = None, loose: bool = False) -> list:
    torch.manual_seed(0)
    random.seed(0)
    model = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 2))
    w = torch.zeros(4, 2, requires_grad=True)
    params = [w] if loose else list(model.parameters())
    opt = torch.optim.Adam(params, lr=1e-2)
    loader = DataLoader(dataset, batch_size=32, shuffle=sampler is None and not isinstance(dataset, IterableDataset),
                        sampler=sampler)
    with Observer(checks=[IndexIgnored]) as obs:
        for _ in range(epochs):
            for xb, yb in loader:
                out = xb.float() @ w if loose else model(xb.float())
                loss = F.cross_entropy(out, yb)
                opt.zero_grad()
                loss.backward()
                opt.step()
    assert not obs.internal_errors, obs.internal_errors
    return [f for f in obs.findings if f.code == CODE]


@pytest.mark.parametrize("mode,kind", [("randint", "random"), ("torch_random", "random"), ("first", "constant"),
                                       ("cached", "constant"), ("modulo", "few")])
def test_an_index_ignoring_dataset_is_caught(mode: str, kind: str) -> None:
    (hit,) = _train(Table(mode))
    assert hit.severity.name == "WARNING" and hit.evidence["kind"] == kind and hit.location == "Table"


def test_caught_with_numpy_storage_and_a_module_less_network() -> None:
    (hit,) = _train(Table("first", numpy=True), loose=True)
    assert hit.evidence["kind"] == "constant"
    (hit,) = _train(Table("randint", numpy=True), epochs=12, loose=True)   # (module-less: sampled steps only)
    assert hit.evidence["kind"] == "random"


class Stream(IterableDataset):
    def __iter__(self):
        g = torch.Generator().manual_seed(0)
        for _ in range(256):
            x = torch.randn(4, generator=g)
            yield x, int(x[0] > 0)


@pytest.mark.parametrize("make", [
    lambda: _train(Table("plain")),
    lambda: _train(Table("noise")),
    lambda: _train(Table("flip")),
    lambda: _train(Table("plain", discrete=True)),                   # 16 distinct rows, used by index
    lambda: _train(Table("plain"), sampler=RandomSampler(range(256), replacement=True)),
    lambda: _train(Table("noise"), sampler=RandomSampler(range(256), replacement=True)),
    lambda: _train(Stream()),
    lambda: _train(Table("permuted")),
], ids=["plain", "noise", "flip", "discrete", "with_replacement", "noise_with_replacement", "iterable", "permuted"])
def test_healthy_datasets_stay_quiet(make) -> None:
    assert not make()


def test_one_epoch_is_enough_where_the_dataset_holds_its_rows() -> None:
    """The rows the dataset holds are read back at the end of the run: random rows are seen at once."""
    (hit,) = _train(Table("randint"), epochs=1)
    assert hit.evidence["kind"] == "random" and hit.evidence["other_row"] >= hit.evidence["probed_indices"] // 2


def test_the_end_of_run_read_leaves_the_random_state_as_it_was() -> None:
    from nndoctor.monitor.checks.data.index_ignored import _probe

    random.seed(1)
    torch.manual_seed(1)
    np.random.seed(1)
    before = (random.random(), torch.rand(()).item(), np.random.rand())
    random.seed(1)
    torch.manual_seed(1)
    np.random.seed(1)
    probed = _probe(Table("randint"))
    assert probed is not None and probed[2] >= 32 and probed[3] <= 8
    assert (random.random(), torch.rand(()).item(), np.random.rand()) == before


def test_a_dataset_whose_rows_repeat_is_not_few_examples() -> None:
    data = Table("plain")
    data.x = np.repeat(np.arange(8, dtype=np.float32)[:, None], 4, axis=1)[np.arange(256) % 8]   # 8 rows, by index
    assert not _train(data)


@pytest.mark.parametrize("mode", ["randint", "first"])
def test_a_loader_made_every_epoch_in_the_for_statement(mode: str) -> None:
    torch.manual_seed(0)
    random.seed(0)
    model = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 2))
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    with Observer(checks=[IndexIgnored]) as obs:
        for _ in range(3):
            for xb, yb in DataLoader(Table(mode), batch_size=32, shuffle=True):   # gone after the loop
                loss = F.cross_entropy(model(xb), yb)
                opt.zero_grad()
                loss.backward()
                opt.step()
    assert [f.evidence["kind"] for f in obs.findings if f.code == CODE] == ["random" if mode == "randint" else "constant"]
