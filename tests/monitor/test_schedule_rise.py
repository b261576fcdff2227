"""lr.schedule-keeps-rising: a warm-up without its cap, in a torch scheduler or written by hand;
schedules that stop at the base, rise on purpose (OneCycleLR, CyclicLR) or decay stay quiet."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from nndoctor.findings import Severity
from nndoctor.monitor import Observer
from nndoctor.monitor.checks.schedule_rise import ScheduleKeepsRising, loss_got_worse, rise_is_geometric

CODE = "lr.schedule-keeps-rising"
sched_mod = torch.optim.lr_scheduler


def _data(n: int = 512):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, 10, generator=g)
    return x, (x[:, 0] + x[:, 1] > 0).long()


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(10, 32), nn.Linear(32, 2)

    def forward(self, x):
        return self.fc2(torch.relu(self.fc1(x)))


def _run(opt_fn, sched_fn=None, manual=None, steps: int = 160, subclass: bool = False, plateau: bool = False):
    torch.manual_seed(0)
    x, y = _data()
    model = Net() if subclass else nn.Sequential(nn.Linear(10, 32), nn.ReLU(), nn.Linear(32, 2))
    opt = opt_fn(model.parameters())
    sched = sched_fn(opt) if sched_fn else None
    crit = nn.CrossEntropyLoss()
    with Observer(checks=[ScheduleKeepsRising]) as obs:
        for step in range(steps):
            if manual is not None:
                for g in opt.param_groups:
                    g["lr"] = manual(step)
            i = (step % 16) * 32
            loss = crit(model(x[i:i + 32]), y[i:i + 32]) if subclass else F.cross_entropy(model(x[i:i + 32]), y[i:i + 32])
            opt.zero_grad()
            loss.backward()
            opt.step()
            if sched is not None:
                sched.step(loss.item()) if plateau else sched.step()
    assert not obs.internal_errors, obs.internal_errors
    return [f for f in obs.findings if f.code == CODE]


def test_uncapped_lambda_warmup_is_caught():
    hits = _run(lambda p: torch.optim.Adam(p, lr=3e-3), lambda o: sched_mod.LambdaLR(o, lambda s: (s + 1) / 10),
                subclass=True)
    assert hits and hits[0].severity == Severity.WARNING, hits
    assert hits[0].evidence["reference"] == "initial_lr" and hits[0].evidence["multiple"] >= 10


def test_uncapped_warmup_that_wrecks_the_loss_is_reported_during_the_run():
    hits = _run(lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9),
                lambda o: sched_mod.LambdaLR(o, lambda s: (s + 1) / 10))
    assert hits and hits[0].severity == Severity.WARNING and hits[0].evidence["loss_got_worse"], hits
    assert hits[0].first_step < 150  # at a loss-curve read, before the end


def test_uncapped_hand_written_warmup_is_caught():
    hits = _run(lambda p: torch.optim.SGD(p, lr=0.01, momentum=0.9), manual=lambda s: 0.02 * (s + 1) / 5)
    assert hits and hits[0].severity == Severity.WARNING, hits
    assert hits[0].evidence["reference"] == "first step"


@pytest.mark.parametrize("kw", [
    {"sched_fn": lambda o: sched_mod.LambdaLR(o, lambda s: min(1.0, (s + 1) / 20))},
    {"sched_fn": lambda o: sched_mod.LinearLR(o, start_factor=0.05, total_iters=30)},
    {"sched_fn": lambda o: sched_mod.OneCycleLR(o, max_lr=0.05, total_steps=320)},  # cut short in its rise
    {"sched_fn": lambda o: sched_mod.CyclicLR(o, base_lr=1e-4, max_lr=0.02, step_size_up=200)},
    {"sched_fn": lambda o: sched_mod.LambdaLR(o, lambda s: (s + 1) / 1000)},  # cut short during warm-up
    {"sched_fn": lambda o: sched_mod.ExponentialLR(o, gamma=0.98)},
    {"sched_fn": lambda o: sched_mod.ReduceLROnPlateau(o, patience=3), "plateau": True},
    {"sched_fn": lambda o: sched_mod.CosineAnnealingLR(o, T_max=40)},  # periodic: comes back to base
    {"manual": lambda s: 3e-3 * min(1.0, (s + 1) / 30)},
    {"manual": lambda s: 3e-3 * (s + 1) / 500},  # hand-written warm-up cut short: the loss goes down
])
def test_healthy_schedules_stay_quiet(kw):
    hits = _run(lambda p: torch.optim.Adam(p, lr=3e-3), **kw)
    assert not hits, hits


class LinearSweep(sched_mod.LRScheduler):
    """An lr finder's linear sweep (torch-lr-finder's LinearLR): rises to end_lr on purpose."""

    def __init__(self, optimizer, end_lr: float, num_iter: int) -> None:
        self.end_lr, self.num_iter = end_lr, num_iter
        super().__init__(optimizer)

    def get_lr(self):
        r = self.last_epoch / (self.num_iter - 1)
        return [base + r * (self.end_lr - base) for base in self.base_lrs]


def test_lr_finder_sweep_stays_quiet():
    assert not _run(lambda p: torch.optim.SGD(p, lr=1e-4), lambda o: LinearSweep(o, end_lr=5.0, num_iter=160))


def test_lr_range_test_is_info_at_most():
    hits = _run(lambda p: torch.optim.SGD(p, lr=1e-6), lambda o: sched_mod.ExponentialLR(o, gamma=1.1), steps=120)
    assert all(f.severity == Severity.INFO for f in hits), hits


def test_helpers():
    assert loss_got_worse([1.0] * 50 + [0.2] * 50 + [2.0] * 50)[0]
    assert not loss_got_worse([1.0 - i / 200 for i in range(150)])[0]
    steps = list(range(1, 101))
    assert rise_is_geometric(steps, [1e-6 * 1.1 ** s for s in steps])
    assert not rise_is_geometric(steps, [1e-3 * s for s in steps])


def test_caught_when_main_frees_the_optimizer_before_the_end():
    def main():
        torch.manual_seed(0)
        x, y = _data()
        model = Net()
        opt = torch.optim.Adam(model.parameters(), lr=3e-3)
        sched = sched_mod.LambdaLR(opt, lambda s: (s + 1) / 10)
        for step in range(160):
            i = (step % 16) * 32
            opt.zero_grad()
            F.cross_entropy(model(x[i:i + 32]), y[i:i + 32]).backward()
            opt.step()
            sched.step()

    with Observer(checks=[ScheduleKeepsRising]) as obs:
        main()
    hits = [f for f in obs.findings if f.code == CODE]
    assert hits and hits[0].evidence["reference"] == "initial_lr", hits


def test_the_rising_schedule_is_the_root_cause_of_the_loss_going_up():
    from nndoctor import catalogue, rootcause

    rising = catalogue.finding(CODE, "rising", {"optimizer": "opt"}, location="opt", first_step=300)
    up = catalogue.finding("loss-curve.goes-up", "up", {}, location="loss", first_step=120)
    assert rootcause.headline(rootcause.link([up, rising])).code == CODE
