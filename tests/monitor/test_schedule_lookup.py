"""The look-up of the lr scheduler that holds an optimizer (nndoctor/monitor/checks/schedule.py)."""

from __future__ import annotations

import torch

from nndoctor.monitor.checks.schedule import _scheduler_of


def test_the_scheduler_is_found_after_its_attribute_dict_was_read():
    """Reading ``vars(scheduler)`` (a check looking through the script's objects does) makes the heap
    refer to the optimizer through the scheduler's dict: the look-up still finds the scheduler."""
    model = torch.nn.Linear(3, 1)
    for read_dict in (False, True):
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / 10))
        if read_dict:
            assert vars(sched)["optimizer"] is opt
        assert _scheduler_of(opt) is sched
    assert _scheduler_of(torch.optim.SGD(model.parameters(), lr=0.1)) is None


def test_a_scheduler_built_after_many_reads_is_still_found_and_kept():
    """Reads while no scheduler exists cost no look-up (nothing to find: no initial_lr in the groups),
    so a scheduler built later (a fine-tuning stage) is still found; then it is kept, not scanned again."""
    from nndoctor.monitor.checks.schedule import SchedulerLookup

    opt = torch.optim.SGD(torch.nn.Linear(3, 1).parameters(), lr=0.1)
    lookup = SchedulerLookup(limit=2)
    for _ in range(5):
        assert lookup(opt) is None
    assert lookup.scans == 0
    sched = torch.optim.lr_scheduler.StepLR(opt, 10)
    assert lookup(opt) is sched and lookup(opt) is sched and lookup.scans == 1
    assert lookup(torch.optim.SGD(torch.nn.Linear(3, 1).parameters(), lr=0.1)) is None  # another optimizer
