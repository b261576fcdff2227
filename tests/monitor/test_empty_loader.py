"""data.loader-yields-no-batches: a DataLoader iterated with len(loader) == 0."""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset, IterableDataset, TensorDataset

from nndoctor.findings import Severity
from nndoctor.monitor import Observer
from nndoctor.monitor.checks.data.empty_loader import LoaderYieldsNoBatches

CODE = "data.loader-yields-no-batches"


class Rows(Dataset):
    def __init__(self, x: torch.Tensor, y: torch.Tensor) -> None:
        self.x, self.y = x, y

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.x[i], self.y[i]


class Stream(IterableDataset):
    def __iter__(self):
        g = torch.Generator().manual_seed(0)
        for _ in range(40):
            yield torch.randn(4, generator=g), torch.randint(0, 3, (), generator=g)


def _data(n: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return torch.randn(n, 4, generator=g), torch.randint(0, 3, (n,), generator=g)


def _fit(train: DataLoader, val: DataLoader | None, *, sequential: bool, epochs: int = 3) -> list:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3)) if sequential else nn.Linear(4, 3)
    opt = torch.optim.Adam(model.parameters(), 1e-2) if sequential else torch.optim.SGD(model.parameters(), 0.1)
    with Observer(checks=[LoaderYieldsNoBatches]) as obs:
        for _ in range(epochs):
            for xb, yb in train:
                opt.zero_grad()
                F.cross_entropy(model(xb), yb).backward()
                opt.step()
            if val is not None:
                with torch.no_grad():
                    for xb, yb in val:
                        F.cross_entropy(model(xb), yb)
    assert not obs.internal_errors, obs.internal_errors
    return [f for f in obs.findings if f.code == CODE]


def test_drop_last_with_fewer_rows_than_a_batch_trains_nothing():
    x, y = _data(120)
    found = _fit(DataLoader(TensorDataset(x, y), batch_size=128, shuffle=True, drop_last=True), None, sequential=True)
    assert len(found) == 1 and found[0].severity is Severity.ERROR
    assert found[0].evidence["dataset_rows"] == 120 and found[0].evidence["iterations"] == 3


def test_empty_validation_split_custom_dataset_is_a_warning():
    x, y = _data(200)
    n = len(x)
    train = DataLoader(Rows(x[: int(0.8 * n)], y[: int(0.8 * n)]), batch_size=32, shuffle=True)
    val = DataLoader(Rows(x[n:], y[n:]), batch_size=32)  # bug: x[int(0.8 * n):] meant
    found = _fit(train, val, sequential=False)
    assert len(found) == 1 and found[0].severity is Severity.WARNING


def test_loaders_with_batches_or_unknown_length_are_quiet():
    x, y = _data(200)
    train = DataLoader(TensorDataset(x, y), batch_size=64, shuffle=True, drop_last=True)
    small_val = DataLoader(TensorDataset(x[:10], y[:10]), batch_size=64)  # one partial batch: fine
    assert _fit(train, small_val, sequential=True) == []
    assert _fit(DataLoader(Stream(), batch_size=8), None, sequential=False) == []
    unused = DataLoader(TensorDataset(x[:0], y[:0]), batch_size=8)  # built, never iterated
    assert _fit(train, None, sequential=False) == [] and len(unused) == 0


# ------------------------------------------------- an exhausted iterator iterated again each epoch
def _step(model, opt, xb, yb):
    opt.zero_grad()
    F.cross_entropy(model(xb), yb).backward()
    opt.step()


def _observe(loop) -> list:
    with Observer(checks=[LoaderYieldsNoBatches]) as obs:
        loop()
    assert not obs.internal_errors, obs.internal_errors
    return [f for f in obs.findings if f.code == CODE]


def test_iterator_made_once_outside_the_epoch_loop_sequential_adam():
    x, y = _data(256)
    loader = DataLoader(TensorDataset(x, y), batch_size=32, shuffle=True)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
    opt = torch.optim.Adam(model.parameters(), 1e-2)

    def loop():
        it = iter(loader)
        for _ in range(5):
            for xb, yb in it:
                _step(model, opt, xb, yb)

    found = _observe(loop)
    assert len(found) == 1 and found[0].severity is Severity.WARNING
    assert found[0].evidence["passes_after_exhausted"] == 4 and found[0].evidence["optimizer_steps"] == 8


def test_trainer_class_enumerates_a_stored_iterator_of_dict_batches():
    x, y = _data(200)

    class Dicts(Dataset):
        def __len__(self) -> int:
            return len(x)

        def __getitem__(self, i: int) -> dict:
            return {"x": x[i], "y": y[i]}

    class Trainer:
        def __init__(self) -> None:
            self.model = nn.Linear(4, 3)
            self.opt = torch.optim.SGD(self.model.parameters(), 0.1)
            self.batches = iter(DataLoader(Dicts(), batch_size=50, shuffle=True))

        def train_epoch(self) -> None:
            for _i, batch in enumerate(self.batches):
                _step(self.model, self.opt, batch["x"], batch["y"])

    t = Trainer()
    found = _observe(lambda: [t.train_epoch() for _ in range(3)])
    assert len(found) == 1 and found[0].evidence["passes_after_exhausted"] == 2


def test_validation_iterator_passed_to_an_eval_function_is_empty_after_the_first_eval():
    x, y = _data(300)
    train = DataLoader(TensorDataset(x[:200], y[:200]), batch_size=50, shuffle=True)
    val_batches = iter(DataLoader(TensorDataset(x[200:], y[200:]), batch_size=50))
    model = nn.Linear(4, 3)
    opt = torch.optim.SGD(model.parameters(), 0.1)

    def evaluate(batches) -> float:
        total = 0.0
        with torch.no_grad():
            for xb, yb in batches:
                total += F.cross_entropy(model(xb), yb).item()
        return total

    def loop():
        for _ in range(4):
            for xb, yb in train:
                _step(model, opt, xb, yb)
            evaluate(val_batches)

    found = _observe(loop)
    assert len(found) == 1 and found[0].evidence["passes_after_exhausted"] == 3


def test_iterators_renewed_resumed_or_cycled_are_quiet():
    import itertools

    x, y = _data(256)
    loader = DataLoader(TensorDataset(x, y), batch_size=32, shuffle=True)
    model = nn.Linear(4, 3)
    opt = torch.optim.SGD(model.parameters(), 0.1)

    def renewed():  # a fixed number of steps, a new iterator when one runs out
        it = iter(loader)
        for _ in range(40):
            try:
                xb, yb = next(it)
            except StopIteration:
                it = iter(loader)
                xb, yb = next(it)
            _step(model, opt, xb, yb)

    def resumed():  # a pass split in two loops over the same, not yet exhausted, iterator
        it = iter(loader)
        for i, (xb, yb) in enumerate(it):
            _step(model, opt, xb, yb)
            if i == 3:
                break
        for xb, yb in it:
            _step(model, opt, xb, yb)
        for _ in range(2):
            for xb, yb in loader:
                _step(model, opt, xb, yb)

    def cycled():
        for xb, yb in itertools.islice(itertools.cycle(loader), 30):
            _step(model, opt, xb, yb)

    for loop in (renewed, resumed, cycled):
        assert _observe(loop) == [], loop.__name__
