"""Per-rank distributed checks and the fingerprint recorder, in one process (no torchrun needed)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, DistributedSampler, TensorDataset

from nndoctor.distributed.checks import scales_with_world_size
from nndoctor.monitor.observer import Observer


@pytest.fixture
def rank_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """This process plays rank 0 of 2 (what torchrun's environment says)."""
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("LOCAL_RANK", "0")


def _data(n: int = 64) -> TensorDataset:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, 6, generator=g)
    return TensorDataset(x, (x[:, 0] > 0).long())


def _train(model: nn.Module, loader: DataLoader, epochs: int, set_epoch: bool = False, lr: float = 0.05) -> Observer:
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    with Observer() as obs:
        for epoch in range(epochs):
            if set_epoch:
                loader.sampler.set_epoch(epoch)
            for xb, yb in loader:
                opt.zero_grad()
                F.cross_entropy(model(xb), yb).backward()
                opt.step()
    return obs


def _codes(obs: Observer) -> set[str]:
    return {f.code for f in obs.findings if f.code.startswith("distributed.")}


class Net(nn.Module):
    def __init__(self, norm: nn.Module | None = None) -> None:
        super().__init__()
        self.fc1, self.norm, self.fc2 = nn.Linear(6, 16), norm or nn.Identity(), nn.Linear(16, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(torch.relu(self.norm(self.fc1(x))))


@pytest.mark.parametrize("set_epoch,shuffle,expected", [(False, True, True), (True, True, False), (False, False, False)])
def test_sampler_without_set_epoch(set_epoch: bool, shuffle: bool, expected: bool) -> None:
    torch.manual_seed(0)
    sampler = DistributedSampler(_data(), num_replicas=2, rank=0, shuffle=shuffle)
    train_loader = DataLoader(_data(), batch_size=16, sampler=sampler)
    obs = _train(Net(), train_loader, epochs=3, set_epoch=set_epoch)
    found = [f for f in obs.findings if f.code == "distributed.sampler-epoch-not-set"]
    assert bool(found) is expected
    if expected:
        assert found[0].evidence["epochs_read"] == 3 and found[0].location == "train_loader"
        assert "train_loader.sampler.set_epoch(epoch)" in found[0].fixes[0]


def test_one_epoch_is_not_enough_to_tell() -> None:
    loader = DataLoader(_data(), batch_size=16, sampler=DistributedSampler(_data(), num_replicas=2, rank=1))
    assert not _codes(_train(Net(), loader, epochs=1))


@pytest.mark.parametrize("model", [lambda: Net(nn.BatchNorm1d(16)),
                                   lambda: nn.Sequential(nn.Linear(6, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Linear(16, 2))])
@pytest.mark.parametrize("batch,expected", [(4, True), (32, False)])
def test_batchnorm_on_tiny_per_rank_batches(rank_env: None, model, batch: int, expected: bool) -> None:
    torch.manual_seed(0)
    obs = _train(model(), DataLoader(_data(), batch_size=batch, shuffle=True), epochs=1)
    found = [f for f in obs.findings if f.code == "distributed.batchnorm-not-synced"]
    assert bool(found) is expected
    if expected:
        ev = found[0].evidence
        assert (ev["per_rank_batch"], ev["world_size"], ev["global_batch"]) == (4, 2, 8)


def test_batchnorm_on_tiny_batches_in_one_process_is_not_a_distributed_finding() -> None:
    assert "RANK" not in os.environ
    torch.manual_seed(0)
    obs = _train(Net(nn.BatchNorm1d(16)), DataLoader(_data(), batch_size=4), epochs=1)
    assert not _codes(obs)


def test_fingerprints_are_recorded_on_a_rank_and_not_in_one_process(rank_env: None, monkeypatch) -> None:
    torch.manual_seed(0)
    obs = _train(Net(), DataLoader(_data(), batch_size=8), epochs=1)
    rec = obs.report().facts["distributed"]
    assert {"opt:1", "opt:8"} <= set(rec["params"]) and rec["param_names"]["opt"][0] == "model.fc1.weight"
    assert set(rec["batches"]) >= {"1", "2"} and rec["batches"]["1"].startswith("(8, 6):")
    local, used = rec["grads"]["opt:1"]
    assert local == pytest.approx(used, rel=1e-9)  # no all-reduce in one process: the local gradient is used
    monkeypatch.delenv("RANK")
    obs = _train(Net(), DataLoader(_data(), batch_size=8), epochs=1)
    assert "distributed" not in obs.report().facts



def test_cross_rank_checks_are_retired_from_the_start_in_one_process(monkeypatch) -> None:
    """In a single process the per-rank recorder and the world-size checks can find nothing: they
    are retired before the first step (no events on the sampled steps) instead of being called on
    every one; on a rank of a distributed launch they hear their events as before."""
    from nndoctor.distributed.checks import AccumulationWithoutNoSync, BatchNormTinyBatch, LrNotScaled
    from nndoctor.distributed.fingerprints import RankFingerprints

    inert = (RankFingerprints, BatchNormTinyBatch, LrNotScaled)
    torch.manual_seed(0)
    obs = _train(Net(nn.BatchNorm1d(16)), DataLoader(_data(), batch_size=4), epochs=1)
    assert obs.internal_errors == [] and all(obs.retired(c) for c in inert)
    assert not obs.retired(AccumulationWithoutNoSync)  # (a DDP model in a world of one: it may still fire)
    for kind in ("model_input", "grad", "backward", "step.pre", "step.post"):
        assert not any(isinstance(c, inert) for c in obs._by_kind.get(kind, ()))
    assert sum(isinstance(c, inert) for c in obs._by_kind["end"]) == 3  # (they still hear the end)
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("WORLD_SIZE", "2")
    obs = _train(Net(nn.BatchNorm1d(16)), DataLoader(_data(), batch_size=4), epochs=1)
    assert not any(obs.retired(c) for c in inert)
    assert "distributed.batchnorm-not-synced" in _codes(obs) and "distributed" in obs.report().facts


def test_fingerprints_are_recorded_even_when_the_end_of_run_budget_is_spent(rank_env: None, monkeypatch) -> None:
    # a loaded machine or a large process can spend the end-of-run budget on the cheap checks before
    # the per-rank recorder, which is registered last: the merge needs it, so it goes first
    from nndoctor.monitor import ending

    monkeypatch.setattr(ending, "END_BUDGET_S", 0.0)
    monkeypatch.setattr(ending, "END_BUDGET_SHARE", 0.0)
    obs = _train(Net(), DataLoader(_data(), batch_size=8), epochs=1)
    assert "distributed" in obs.report().facts

@pytest.fixture
def process_group(tmp_path: Path):
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'pg'}", rank=0, world_size=1)
    yield
    dist.destroy_process_group()


@pytest.mark.parametrize("no_sync", [False, True])
def test_gradient_accumulation_without_no_sync(process_group: None, no_sync: bool) -> None:
    torch.manual_seed(0)
    model = nn.parallel.DistributedDataParallel(Net())
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    batches = list(DataLoader(_data(), batch_size=8))
    with Observer() as obs:
        for i, (xb, yb) in enumerate(batches):
            last = i % 2 == 1
            ctx = model.no_sync() if no_sync and not last else torch.enable_grad()
            with ctx:
                (F.cross_entropy(model(xb), yb) / 2).backward()
            if last:
                opt.step()
                opt.zero_grad()
    found = [f for f in obs.findings if f.code == "distributed.accumulation-without-no-sync"]
    assert bool(found) is not no_sync
    if found:
        assert found[0].severity.value == "info" and found[0].evidence["backwards_per_step"] == 2


@pytest.mark.parametrize("source,expected", [
    ("opt = SGD(p, lr=0.1 * world_size)", True),
    ("import torch.distributed as dist\nlr = args.lr * dist.get_world_size()\nopt = Adam(m.parameters(), lr=lr)", True),
    ("ws = int(os.environ['WORLD_SIZE'])\nbase = 1e-3\nscaled = base * ws\nopt = AdamW(p, lr=scaled)", True),
    ("opt = SGD(p, lr=0.1)\nfor g in opt.param_groups:\n    g['lr'] *= world", False),
    ("opt = SGD(p, lr=0.1)\nfor g in opt.param_groups:\n    g['lr'] = 0.1 * world_size", True),
    ("opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)", False),
    ("lr = 3e-4\nopt = Adam(params, lr=lr)", False),
    ("opt = Adam(params)", None),
])
def test_lr_scaled_with_the_world_size(source: str, expected: bool | None) -> None:
    assert scales_with_world_size(source) is expected
