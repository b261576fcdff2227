"""FSDP2 (``fully_shard``, DTensor parameters) in one process on a 1-rank gloo group: every check
reads this rank's shard (nndoctor.monitor.tensors.local), none fails, and the checks still find
what they find without sharding."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
import torch
import torch.distributed as dist
import torch.nn as nn
import torch.nn.functional as F

from nndoctor.monitor.observer import Observer
from nndoctor.monitor.tensors import is_sharded, local, local_grad

fsdp = pytest.importorskip("torch.distributed.fsdp")
DTensor = pytest.importorskip("torch.distributed.tensor").DTensor


@pytest.fixture
def process_group(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A 1-rank gloo group; fails the test if nndoctor's own code makes a DTensor change its
    placement (on several ranks, a collective: ``bool(sharded.any())``, ``.item()``, ``full_tensor()``)."""
    from torch.distributed.tensor import _dispatch

    ours: list[str] = []
    original = _dispatch.redistribute_local_tensor

    def spy(*args: Any, **kwargs: Any) -> Any:
        frame = sys._getframe(1)
        while frame is not None and "/nndoctor/" not in frame.f_code.co_filename.replace("\\", "/"):
            frame = frame.f_back
        if frame is not None and "/nndoctor/monitor/observer/" not in frame.f_code.co_filename.replace("\\", "/"):
            ours.append(f"{frame.f_code.co_filename}:{frame.f_lineno}")
        return original(*args, **kwargs)

    monkeypatch.setattr(_dispatch, "redistribute_local_tensor", spy)
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'pg'}", rank=0, world_size=1)
    yield
    dist.destroy_process_group()
    assert not ours, f"nndoctor redistributed DTensors at {sorted(set(ours))}"


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc1, self.fc2, self.fc3 = nn.Linear(8, 32), nn.Linear(32, 32), nn.Linear(32, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc3(torch.tanh(self.fc2(torch.relu(self.fc1(x)))))


def _sequential() -> nn.Module:
    model = nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Linear(32, 32), nn.ReLU(), nn.Linear(32, 2))
    fsdp.fully_shard(model)
    return model


def _per_layer() -> nn.Module:
    model = Net()
    for layer in (model.fc1, model.fc2, model.fc3):
        fsdp.fully_shard(layer)
    fsdp.fully_shard(model)
    return model


def _train(model: nn.Module, opt: torch.optim.Optimizer, steps: int = 40) -> Observer:
    g = torch.Generator().manual_seed(1)
    with Observer() as obs:
        for _ in range(steps):
            x = torch.randn(16, 8, generator=g)
            y = (x[:, 0] > 0).long()
            opt.zero_grad()
            loss = F.cross_entropy(model(x), y)
            loss.backward()
            opt.step()
    return obs


@pytest.mark.parametrize("build,make_opt", [
    (_sequential, lambda ps: torch.optim.Adam(ps, lr=1e-3)),
    (_per_layer, lambda ps: torch.optim.SGD(ps, lr=0.05, momentum=0.9)),
])
def test_healthy_fsdp2_training_runs_every_check_without_error(process_group: None, build: Callable[[], nn.Module],
                                                               make_opt: Callable) -> None:
    torch.manual_seed(0)
    model = build()
    assert all(isinstance(p, DTensor) for p in model.parameters())
    obs = _train(model, make_opt(model.parameters()))
    report = obs.report()
    assert report.internal_errors == [], report.internal_errors
    assert not [f for f in report.findings if f.severity.rank >= 1], report.findings


def test_constant_init_is_found_on_the_shards(process_group: None) -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Linear(32, 32), nn.ReLU(), nn.Linear(32, 2))
    for m in model:
        if isinstance(m, nn.Linear):
            nn.init.constant_(m.weight, 0.1)
    fsdp.fully_shard(model)
    obs = _train(model, torch.optim.SGD(model.parameters(), lr=0.05), steps=10)
    assert obs.report().internal_errors == []
    assert "init.constant-weights" in {f.code for f in obs.findings}


def test_a_detached_loss_is_found_on_the_shards(process_group: None) -> None:
    torch.manual_seed(0)
    model = _per_layer()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    head = nn.Linear(2, 2)  # the loss depends on this layer only: the sharded model gets no gradient
    opt.add_param_group({"params": head.parameters()})
    g = torch.Generator().manual_seed(1)
    with Observer() as obs:
        for _ in range(12):
            x = torch.randn(16, 8, generator=g)
            opt.zero_grad()
            F.cross_entropy(head(model(x).detach()), (x[:, 0] > 0).long()).backward()
            opt.step()
    assert obs.report().internal_errors == []
    assert {f.code for f in obs.findings} & {"grad-flow.no-gradient", "grad-flow.loss-detached"}, obs.findings


def test_local_is_the_shard_and_never_the_whole_tensor(process_group: None) -> None:
    model = _sequential()
    p = next(model.parameters())
    assert is_sharded(p) and type(local(p)) is torch.Tensor and local(p).shape == p.to_local().shape
    model(torch.randn(4, 8)).sum().backward()
    assert type(local_grad(p)) is torch.Tensor and local_grad(nn.Linear(2, 2).weight) is None
    plain = torch.randn(3, 4)
    assert local(plain) is plain and not is_sharded(plain)


def test_local_reads_nothing_from_a_freed_storage() -> None:
    t = torch.randn(8, 4)
    view = t[2:]
    t.untyped_storage().resize_(0)  # what FSDP2 does to a layer's gathered weights after use
    assert local(t).numel() == 0 and local(view).numel() == 0
    assert local(torch.randn(8, 4)[2:]).shape == (6, 4)
