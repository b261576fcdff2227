"""lr.schedule-collapses when the optimizer is a local of the script's main() (pytorch/examples' idiom):
it is freed when main() returns, before the run's end, and the collapse of a short run is only
judgeable there. Before, the check wanted a live optimizer and said nothing (pytorch/examples mnist
with StepLR(step_size=1, gamma=0.7) stepped per batch: lr 1.0 -> 7e-8 in 47 steps, no finding). Three
styles of scoping; per-epoch and per-batch-by-design schedules in the same scopes stay quiet."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.optim.lr_scheduler import OneCycleLR, StepLR

from nndoctor.monitor import Observer
from nndoctor.monitor.checks.schedule import ScheduleCollapses

CODE = "lr.schedule-collapses"


def _data():
    g = torch.Generator().manual_seed(0)
    X = torch.randn(1536, 20, generator=g)
    return X, (X[:, 0] + X[:, 1] > 0).long()


def _epoch(model, opt, sched, per_batch: bool) -> None:
    X, y = _data()
    for i in range(0, 1536, 32):
        opt.zero_grad()
        F.cross_entropy(model(X[i:i + 32]), y[i:i + 32]).backward()
        opt.step()
        if per_batch:
            sched.step()


def _make(schedule: str):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(20, 32), nn.ReLU(), nn.Linear(32, 2))
    opt = torch.optim.Adadelta(model.parameters(), lr=1.0)
    if schedule == "onecycle":
        return model, opt, OneCycleLR(opt, max_lr=1.0, total_steps=49, cycle_momentum=False)
    return model, opt, StepLR(opt, step_size=1, gamma=0.7)


def main_function(schedule: str, per_batch: bool) -> None:
    model, opt, sched = _make(schedule)
    _epoch(model, opt, sched, per_batch)
    if not per_batch:
        sched.step()


class Trainer:
    def __init__(self, schedule: str) -> None:
        self.model, self.opt, self.sched = _make(schedule)

    def fit(self, per_batch: bool) -> None:
        _epoch(self.model, self.opt, self.sched, per_batch)
        if not per_batch:
            self.sched.step()


def trainer_object(schedule: str, per_batch: bool) -> None:
    Trainer(schedule).fit(per_batch)  # the trainer (and its optimizer) is dropped when fit returns


def deleted_at_the_end(schedule: str, per_batch: bool) -> None:
    model, opt, sched = _make(schedule)
    _epoch(model, opt, sched, per_batch)
    del opt, sched  # freed before the report, as a script that cleans up


STYLES = {"main-function": main_function, "trainer-object": trainer_object, "deleted": deleted_at_the_end}


def _found(style: str, schedule: str, per_batch: bool) -> list:
    with Observer(checks=[ScheduleCollapses]) as obs:
        STYLES[style](schedule, per_batch)
    assert not obs.internal_errors, obs.internal_errors
    return [f for f in obs.findings if f.code == CODE]


@pytest.mark.parametrize("style", list(STYLES))
def test_a_per_batch_collapse_is_found_after_the_optimizer_was_freed(style):
    found = _found(style, "step", per_batch=True)
    assert found, style
    assert found[0].evidence["lr_now"] < 1e-5


@pytest.mark.parametrize("style", list(STYLES))
def test_per_epoch_and_one_cycle_schedules_stay_quiet_when_freed(style):
    assert not _found(style, "step", per_batch=False)
    assert not _found(style, "onecycle", per_batch=True)
