"""monitor/tensors.local: plain tensors pass through (the short path), freed storage reads as empty."""

from __future__ import annotations

import torch

from nndoctor.monitor.tensors import local


def test_plain_tensors_and_their_views_pass_through_unchanged():
    x = torch.randn(4, 6)
    param = torch.nn.Parameter(torch.randn(3, 5))
    for t in (x, x.t(), x[:, 1:3], x[1:], x[::2], param, torch.empty(0), torch.empty(2, device="meta")):
        assert local(t) is t


def test_freed_storage_reads_as_empty_contiguous_or_not():
    x = torch.randn(6, 4)
    views = (x, x[2:], x.t(), x[:, 1:])
    x.untyped_storage().resize_(0)  # (what FSDP2 does to gathered weights after their forward)
    for t in views:
        assert local(t).numel() == 0


class _EventFn(torch.nn.Module):
    """torchdiffeq's learn_physics style: ``parameters()`` overridden, no ``recurse`` argument, a list."""

    def __init__(self) -> None:
        super().__init__()
        self.radius = torch.nn.Parameter(torch.rand(1))

    def parameters(self):  # type: ignore[override]
        return [self.radius]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x - self.radius


def test_own_parameters_survive_an_overridden_parameters_method():
    from nndoctor.monitor import Observer, Schedule
    from nndoctor.monitor.tensors import own_named_parameters, own_parameters

    fn = _EventFn()
    assert own_parameters(fn) == [fn.radius] and own_named_parameters(fn) == [("radius", fn.radius)]
    lin = torch.nn.Linear(3, 2)
    assert own_parameters(lin) == list(lin.parameters(recurse=False))
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1), _EventFn())
    opt = torch.optim.Adam([p for m in model for p in m.parameters()], lr=1e-2)
    x, y = torch.randn(64, 4), torch.randn(64, 1)
    with Observer(schedule=Schedule(dense=4, every=5)) as obs:
        for _ in range(12):
            opt.zero_grad()
            torch.nn.functional.mse_loss(model(x), y).backward()
            opt.step()
    assert obs.report().internal_errors == []


def test_fsdp_sharded_reads_the_handles_sharding_strategy():
    from nndoctor.monitor.tensors import fsdp_sharded

    class Handle:
        def __init__(self, sharded: bool) -> None:
            self.uses_sharded_strategy = sharded

    plain = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Linear(2, 1))
    assert not fsdp_sharded([plain])
    unit = torch.nn.Linear(2, 2)
    unit._handle = Handle(False)  # NO_SHARD (FSDP1 on one rank): every rank holds all the weights
    wrapped = torch.nn.Sequential(unit)
    assert not fsdp_sharded([plain, wrapped])
    unit._handle = Handle(True)
    assert fsdp_sharded([plain, wrapped])
