"""monitor/tensors.local: plain tensors pass through (the short path), freed storage reads as empty;
all_zero: ~any() by a min/max pass."""

from __future__ import annotations

import torch

from nndoctor.monitor.tensors import all_zero, local


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


def test_all_zero_agrees_with_any_on_every_kind_of_value():
    """The min/max pass of all_zero gives ~any()'s answer: -0.0 is zero, NaN, inf and the smallest
    subnormal are not, in every float dtype, large (the min/max path) and small alike."""
    for dtype in (torch.float32, torch.float64, torch.float16, torch.bfloat16):
        tiny = torch.finfo(dtype).smallest_normal / 4  # a subnormal: its square underflows
        for special in (None, 0.0, -0.0, float("nan"), float("inf"), -float("inf"), tiny, -tiny, 1.0):
            for numel in (7, 5000):
                t = torch.zeros(numel, dtype=dtype)
                if special is not None:
                    t[numel // 2] = special
                got = all_zero(t)
                assert got.dim() == 0 and got.dtype == torch.bool
                assert bool(got) == bool(~t.any()), (dtype, special, numel)
    for t in (torch.zeros(3000, dtype=torch.int64), torch.ones(3000, dtype=torch.bool),
              torch.zeros(3000, dtype=torch.complex64), torch.zeros(64, 64).t()):
        assert bool(all_zero(t)) == bool(~t.any())
    param = torch.nn.Parameter(torch.zeros(4096))
    assert bool(all_zero(param))
    param.data[100] = 1e-40
    assert not bool(all_zero(param))
