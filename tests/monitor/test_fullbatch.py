"""optimizer.full-batch-method-on-minibatches: Rprop/L-BFGS stepped on changing mini-batches; the
same optimizers on a fixed full batch, or on fresh random points every step, stay quiet."""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

from nndoctor.findings import Severity
from nndoctor.monitor import Observer
from nndoctor.monitor.checks.data.sample import DataCollector
from nndoctor.monitor.checks.fullbatch import FullBatchOptimizerOnMiniBatches

CODE = "optimizer.full-batch-method-on-minibatches"
#: the DataCollector (registered in every real run) makes the observer track DataLoaders
CHECKS = [FullBatchOptimizerOnMiniBatches, DataCollector]


def _data(n: int = 256):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, 8, generator=g)
    return x, (x[:, 0] - x[:, 1] > 0).long()


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Linear(8, 16), nn.Tanh(), nn.Linear(16, 2))

    def forward(self, x):
        return self.body(x)


def _hits(obs: Observer):
    assert not obs.internal_errors, obs.internal_errors
    return [f for f in obs.findings if f.code == CODE]


def _loader_loop(opt_cls, epochs: int = 3, batch: int = 16, **kw):
    torch.manual_seed(0)
    x, y = _data()
    model = Net()
    opt = opt_cls(model.parameters(), **kw)
    loss_fn = nn.CrossEntropyLoss()
    with Observer(checks=CHECKS) as obs:
        for _ in range(epochs):
            for xb, yb in DataLoader(TensorDataset(x, y), batch_size=batch, shuffle=True):
                opt.zero_grad()
                loss_fn(model(xb), yb).backward()
                opt.step()
    return _hits(obs)


def _slice_loop(opt_cls, full: bool = False, fresh: bool = False, shuffle_full: bool = False, steps: int = 60):
    torch.manual_seed(0)
    x, y = _data()
    model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 2))
    opt = opt_cls(model.parameters())
    with Observer(checks=CHECKS) as obs:
        for step in range(steps):
            if full:
                p = torch.randperm(len(x)) if shuffle_full else slice(None)
                xb, yb = x[p], y[p]
            elif fresh:
                xb = torch.randn(64, 8)
                yb = (xb[:, 0] - xb[:, 1] > 0).long()
            else:
                i = (step * 32) % len(x)
                xb, yb = x[i:i + 32], y[i:i + 32]
            opt.zero_grad()
            F.cross_entropy(model(xb), yb).backward()
            opt.step()
    return _hits(obs)


def _lbfgs(full: bool):
    torch.manual_seed(0)
    x, y = _data()
    model = Net()
    opt = torch.optim.LBFGS(model.parameters(), lr=0.5, max_iter=4)
    with Observer(checks=CHECKS) as obs:
        for step in range(60):
            i = (step * 32) % len(x)
            xb, yb = (x, y) if full else (x[i:i + 32], y[i:i + 32])

            def closure(xb=xb, yb=yb):
                opt.zero_grad()
                loss = F.cross_entropy(model(xb), yb)
                loss.backward()
                return loss

            opt.step(closure)
    return _hits(obs)


def test_rprop_on_loader_minibatches_is_caught():
    hits = _loader_loop(torch.optim.Rprop)
    assert hits and hits[0].severity == Severity.WARNING, hits
    assert hits[0].evidence["dataset_len"] == 256 and hits[0].evidence["batch_size"] == 16
    assert hits[0].first_step <= 10  # judged during the run, from the first sampled batches


def test_rprop_on_sliced_minibatches_is_caught():
    hits = _slice_loop(torch.optim.Rprop)
    assert hits and hits[0].severity == Severity.WARNING and hits[0].evidence["rows_came_back"] > 0, hits


def test_lbfgs_on_minibatches_is_info():
    hits = _lbfgs(full=False)
    assert hits and all(f.severity == Severity.INFO for f in hits), hits


def test_full_batch_and_fresh_points_stay_quiet():
    assert not _slice_loop(torch.optim.Rprop, full=True)
    assert not _slice_loop(torch.optim.Rprop, full=True, shuffle_full=True)
    assert not _slice_loop(torch.optim.Rprop, fresh=True)
    assert not _lbfgs(full=True)
    assert not _loader_loop(torch.optim.Rprop, batch=256)  # a DataLoader holding the full batch


def test_minibatch_optimizers_stay_quiet():
    assert not _loader_loop(torch.optim.Adam, lr=1e-3)
    assert not _slice_loop(torch.optim.Adam)


def test_caught_when_main_frees_the_optimizer_before_the_end():
    def main():
        torch.manual_seed(0)
        x, y = _data()
        model = Net()
        opt = torch.optim.Rprop(model.parameters())
        for _ in range(2):
            for xb, yb in DataLoader(TensorDataset(x, y), batch_size=16, shuffle=True):
                opt.zero_grad()
                F.cross_entropy(model(xb), yb).backward()
                opt.step()

    with Observer(checks=CHECKS) as obs:
        main()
    assert _hits(obs)
