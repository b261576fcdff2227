"""lr.warmup-never-ends: a warm-up counted in batches but stepped per epoch, or longer than the run;
warm-ups that end, OneCycleLR, warm-up + cosine and a geometric range test stay below warning."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from nndoctor.findings import Severity
from nndoctor.monitor import Observer
from nndoctor.monitor.checks.warmup import WarmupNeverEnds

CODE = "lr.warmup-never-ends"
_G = torch.Generator().manual_seed(0)
X = torch.randn(512, 10, generator=_G)
Y = (X[:, :3].sum(1) > 0).long()
PER_EPOCH = 16


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(10, 32), nn.Linear(32, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(torch.relu(self.fc1(x)))


def _run(style: str, opt_fn, sched_fn, per_batch: bool, epochs: int = 6) -> list:
    torch.manual_seed(0)
    model = Net() if style == "subclass" else nn.Sequential(nn.Linear(10, 32), nn.ReLU(), nn.Linear(32, 2))
    loss_fn = nn.CrossEntropyLoss() if style == "subclass" else F.cross_entropy
    opt = opt_fn(model.parameters())
    sched = sched_fn(opt)
    with Observer(checks=[WarmupNeverEnds]) as obs:
        for _ in range(epochs):
            for i in range(PER_EPOCH):
                loss = loss_fn(model(X[i * 32:(i + 1) * 32]), Y[i * 32:(i + 1) * 32])
                opt.zero_grad()
                loss.backward()
                opt.step()
                if per_batch:
                    sched.step()
            if not per_batch:
                sched.step()
    assert not obs.internal_errors, obs.internal_errors
    return [f for f in obs.findings if f.code == CODE]


def _warmup_then_linear_decay(warmup: int, total: int):
    def factor(s: int) -> float:  # (transformers.get_linear_schedule_with_warmup)
        return s / max(1, warmup) if s < warmup else max(0.0, (total - s) / max(1, total - warmup))
    return factor


@pytest.mark.parametrize("style", ["subclass", "sequential"])
def test_warmup_in_batches_stepped_per_epoch(style):
    warmup = 6 * PER_EPOCH  # meant as one pass over the whole run's batches... stepped once per epoch
    found = _run(style, lambda p: torch.optim.Adam(p, lr=1e-3),
                 lambda o: torch.optim.lr_scheduler.LambdaLR(o, lambda s: min(1.0, (s + 1) / warmup)),
                 per_batch=False)
    assert len(found) == 1 and found[0].severity is Severity.WARNING, found
    ev = found[0].evidence
    assert ev["share_of_base"] < 0.1 and ev["scheduler_steps"] <= 6


def test_hf_style_warmup_decay_stepped_per_epoch_with_sgd():
    found = _run("subclass", lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9),
                 lambda o: torch.optim.lr_scheduler.LambdaLR(o, _warmup_then_linear_decay(20, 96)),
                 per_batch=False)
    assert len(found) == 1 and found[0].severity is Severity.WARNING, found


def test_linear_warmup_longer_than_the_run_in_main():
    def main():
        return _run("sequential", lambda p: torch.optim.AdamW(p, lr=3e-3),
                    lambda o: torch.optim.lr_scheduler.LinearLR(o, start_factor=0.01, total_iters=1000),
                    per_batch=True)
    found = main()
    assert len(found) == 1 and found[0].severity is Severity.WARNING, found


@pytest.mark.parametrize("sched_fn, per_batch", [
    (lambda o: torch.optim.lr_scheduler.LambdaLR(o, lambda s: min(1.0, (s + 1) / 20)), True),
    (lambda o: torch.optim.lr_scheduler.LambdaLR(o, _warmup_then_linear_decay(10, 96)), True),
    (lambda o: torch.optim.lr_scheduler.LinearLR(o, start_factor=0.1, total_iters=2), False),
    (lambda o: torch.optim.lr_scheduler.OneCycleLR(o, max_lr=1e-2, total_steps=96), True),
    (lambda o: torch.optim.lr_scheduler.SequentialLR(o, [
        torch.optim.lr_scheduler.LinearLR(o, start_factor=0.1, total_iters=10),
        torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=86)], milestones=[10]), True),
])
def test_warmups_that_end_stay_quiet(sched_fn, per_batch):
    assert _run("subclass", lambda p: torch.optim.Adam(p, lr=1e-3), sched_fn, per_batch) == []


def test_geometric_rise_is_info():
    # an lr range test written as LambdaLR: 1e-4 of the base growing by a constant factor per step
    growth = math.log(1e4) / 200
    found = _run("sequential", lambda p: torch.optim.SGD(p, lr=1.0),
                 lambda o: torch.optim.lr_scheduler.LambdaLR(o, lambda s: 1e-4 * math.exp(growth * s)),
                 per_batch=True)
    assert [f.severity for f in found] == [Severity.INFO], found


# ---------------------------------------------------------------------------- one-cycle / cyclic stepped per epoch
@pytest.mark.parametrize("style, sched_fn", [
    ("sequential", lambda o: torch.optim.lr_scheduler.OneCycleLR(o, max_lr=0.1, epochs=6, steps_per_epoch=PER_EPOCH)),
    ("subclass", lambda o: torch.optim.lr_scheduler.OneCycleLR(o, max_lr=0.1, total_steps=6 * PER_EPOCH,
                                                              pct_start=0.25, anneal_strategy="linear")),
    ("sequential", lambda o: torch.optim.lr_scheduler.CyclicLR(o, base_lr=1e-3, max_lr=0.1, step_size_up=40)),
])
def test_one_cycle_and_cyclic_counted_in_batches_stepped_per_epoch(style, sched_fn):
    found = _run(style, lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9), sched_fn, per_batch=False)
    assert [f.severity for f in found] == [Severity.WARNING], found
    f = found[0]
    assert f.evidence["base_lr"] == pytest.approx(0.1) and f.evidence["scheduler_steps"] <= 6
    assert "once per epoch" in f.message


@pytest.mark.parametrize("sched_fn", [
    lambda o: torch.optim.lr_scheduler.OneCycleLR(o, max_lr=0.1, epochs=6, steps_per_epoch=PER_EPOCH),
    lambda o: torch.optim.lr_scheduler.CyclicLR(o, base_lr=1e-3, max_lr=0.1, step_size_up=40),
])
def test_one_cycle_and_cyclic_stepped_per_batch_stay_quiet(sched_fn):
    assert _run("sequential", lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9), sched_fn, per_batch=True) == []


def test_one_cycle_over_epochs_stepped_per_epoch_stays_quiet():
    # a one-cycle schedule whose length is counted in epochs, stepped per epoch: it peaks and comes down
    found = _run("sequential", lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9),
                 lambda o: torch.optim.lr_scheduler.OneCycleLR(o, max_lr=0.1, total_steps=6), per_batch=False)
    assert found == []
