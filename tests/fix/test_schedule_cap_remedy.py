"""The remedy of lr.schedule-keeps-rising: an uncapped warm-up stops at the base rate (like its
fixed twin); a capped warm-up and OneCycleLR are untouched; a hand-written schedule has no remedy."""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F
from helpers import apply_remedy as _apply

from nndoctor.fix.remedies import remedy_for


def _lrs(factor, onecycle: bool = False) -> list[float]:
    torch.manual_seed(0)
    model = nn.Linear(4, 2)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    sched = (torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.1, total_steps=60) if onecycle
             else torch.optim.lr_scheduler.LambdaLR(opt, factor))
    x, y = torch.randn(16, 4), torch.randint(0, 2, (16,))
    out = []
    for _ in range(40):
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()
        sched.step()
        out.append(opt.param_groups[0]["lr"])
    return out


def test_uncapped_warmup_stops_at_the_base_like_the_twin():
    twin = _lrs(lambda s: min(1.0, (s + 1) / 10))
    bug = _lrs(lambda s: (s + 1) / 10)
    with _apply("lr.schedule-keeps-rising", "opt", optimizer="opt", reference="initial_lr"):
        fixed = _lrs(lambda s: (s + 1) / 10)
    assert max(bug) > 3 * max(twin)
    assert fixed == twin


def test_capped_schedules_are_untouched_and_hand_written_ones_have_no_remedy():
    for kw in ({"factor": lambda s: min(1.0, (s + 1) / 10)}, {"factor": None, "onecycle": True}):
        plain = _lrs(**kw)
        with _apply("lr.schedule-keeps-rising", "opt", reference="initial_lr"):
            assert _lrs(**kw) == plain
    finding = {"code": "lr.schedule-keeps-rising", "location": "opt", "evidence": {"reference": "first step"}}
    remedy = remedy_for(finding)
    assert remedy is None or remedy.name != "cap-schedule"
