"""lr.cosine-schedule-wraps-around: CosineAnnealingLR stepped through whole periods (T_max in epochs,
stepped per batch) caught in several styles; cosine over the whole run, per-epoch stepping and warm
restarts on purpose stay quiet."""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from nndoctor.findings import Severity
from nndoctor.monitor import Observer
from nndoctor.monitor.checks.cosine_wrap import CosineWrapsAround

CODE = "lr.cosine-schedule-wraps-around"
_G = torch.Generator().manual_seed(0)
X = torch.randn(512, 10, generator=_G)
Y = (X[:, :3].sum(1) > 0).long()
PER_EPOCH, EPOCHS = 16, 6


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(10, 32), nn.Linear(32, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(torch.relu(self.fc1(x)))


def _run(make, per_batch: bool = True, every: int = 1, subclass: bool = False) -> list:
    torch.manual_seed(0)
    model = Net() if subclass else nn.Sequential(nn.Linear(10, 32), nn.ReLU(), nn.Linear(32, 2))
    opt, sched = make(model)
    with Observer(checks=[CosineWrapsAround]) as obs:
        for _ in range(EPOCHS):
            for i in range(PER_EPOCH):
                opt.zero_grad()
                F.cross_entropy(model(X[i * 32:(i + 1) * 32]), Y[i * 32:(i + 1) * 32]).backward()
                opt.step()
                if per_batch and i % every == 0:
                    sched.step()
            if not per_batch:
                sched.step()
    assert not obs.internal_errors, obs.internal_errors
    return [f for f in obs.findings if f.severity is not Severity.INFO]


def _cosine(opt_fn, **kw):
    def make(model):
        opt = opt_fn(model.parameters())
        return opt, torch.optim.lr_scheduler.CosineAnnealingLR(opt, **kw)
    return make


def test_cosine_with_t_max_in_epochs_stepped_per_batch_is_caught_in_three_styles():
    for make, every, subclass in (
            (_cosine(lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9), T_max=EPOCHS), 1, False),
            (_cosine(lambda p: torch.optim.Adam(p, lr=1e-3), T_max=EPOCHS, eta_min=1e-5), 1, True),
            (_cosine(lambda p: torch.optim.SGD(p, lr=0.05), T_max=PER_EPOCH // 4), 2, False)):
        found = _run(make, every=every, subclass=subclass)
        assert [f.code for f in found] == [CODE], found
        f = found[0]
        assert f.severity is Severity.WARNING and f.evidence["periods"] >= 1
        assert f.evidence["lr_after_min"] >= 0.5 * f.evidence["base_lr"]


def test_cosine_over_the_run_per_epoch_and_warm_restarts_are_quiet():
    sgd = lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9)  # noqa: E731
    assert _run(_cosine(sgd, T_max=EPOCHS * PER_EPOCH)) == []
    assert _run(_cosine(sgd, T_max=EPOCHS), per_batch=False) == []

    def restarts(model):
        opt = sgd(model.parameters())
        return opt, torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(opt, T_0=10)
    assert _run(restarts) == []
    # stepped past T_max but less than a whole period (down once, then partly back up)
    assert _run(_cosine(sgd, T_max=EPOCHS * PER_EPOCH * 2 // 3)) == []
