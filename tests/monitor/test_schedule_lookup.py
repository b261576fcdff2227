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
