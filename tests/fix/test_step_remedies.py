"""Remedies of a stalled step (optimizer.plain-sgd-stalls: Adam at the probe's rate instead of plain SGD;
lr.too-low where the probe found momentum 0.9 the working setting: momentum added): the stalled run found by
the step-size probe, re-run with the remedy, trains exactly like its fixed twin (Adam at 1e-3, or SGD with
momentum) in three styles; other optimizers are left bit-identical."""

from __future__ import annotations

from typing import Callable

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from helpers import apply_remedy, finding_of, remedied

from nndoctor.fix.remedies import remedy_for, suggested_lr
from nndoctor.monitor.checks.fit import Fit
from nndoctor.monitor.checks.lr import LearningRate
from nndoctor.monitor.checks.lr_probe import StepSizeProbe

CHECKS = [LearningRate, StepSizeProbe, Fit]
MakeOpt = Callable[..., torch.optim.Optimizer]


def _data(n: int = 1200, d: int = 64, k: int = 10) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    centres = torch.randn(k, d, generator=g) * 1.5
    y = torch.randint(0, k, (n,), generator=g)
    return centres[y] + torch.randn(n, d, generator=g), y


def _sequential(make_opt: MakeOpt, steps: int = 150) -> list[float]:
    """Style 1: a deep ReLU Sequential, index batches, a loss module."""
    torch.manual_seed(0)
    layers: list[nn.Module] = [nn.Linear(64, 64), nn.ReLU()]
    for _ in range(6):
        layers += [nn.Linear(64, 64), nn.ReLU()]
    model = nn.Sequential(*layers, nn.Linear(64, 10))
    opt = make_opt(model.parameters())
    x, y = _data()
    loss_fn, out = nn.CrossEntropyLoss(), []
    for s in range(steps):
        j = (s * 32) % (len(x) - 32)
        opt.zero_grad()
        loss = loss_fn(model(x[j:j + 32]), y[j:j + 32])
        loss.backward()
        opt.step()
        out.append(float(loss))
    return out


class _Tower(nn.Module):
    """Style 2: a tanh tower in a ModuleList, a DataLoader, F.cross_entropy, a StepLR schedule."""

    def __init__(self, depth: int = 8) -> None:
        super().__init__()
        self.inp = nn.Linear(64, 64)
        self.blocks = nn.ModuleList(nn.Linear(64, 64) for _ in range(depth))
        self.out = nn.Linear(64, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.tanh(self.inp(x))
        for block in self.blocks:
            h = torch.tanh(block(h))
        return self.out(h)


def _loader(make_opt: MakeOpt, epochs: int = 4, depth: int = 8) -> list[float]:
    torch.manual_seed(0)
    model = _Tower(depth)
    x, y = _data()
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=32, shuffle=True,
                                         generator=torch.Generator().manual_seed(1))
    opt = make_opt(model.parameters())
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1000, gamma=0.5)
    out = []
    for _ in range(epochs):
        for xb, yb in loader:
            loss = F.cross_entropy(model(xb), yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
            out.append(float(loss))
        sched.step()
    return out


def _regression(make_opt: MakeOpt, steps: int = 200) -> list[float]:
    """Style 3: a deep regression MLP, two parameter groups, F.mse_loss, model.zero_grad()."""
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(3)
    x = torch.randn(2000, 16, generator=g)
    y = x[:, :4].sum(1, keepdim=True) + 0.5 * x[:, 4:5] * x[:, 5:6]
    layers: list[nn.Module] = [nn.Linear(16, 48), nn.ReLU()]
    for _ in range(6):
        layers += [nn.Linear(48, 48), nn.ReLU()]
    model = nn.Sequential(*layers, nn.Linear(48, 1))
    opt = make_opt([{"params": model[:-1].parameters()}, {"params": model[-1].parameters()}])
    out = []
    for s in range(steps):
        j = (s * 64) % (len(x) - 64)
        model.zero_grad()
        loss = F.mse_loss(model(x[j:j + 64]), y[j:j + 64])
        loss.backward()
        opt.step()
        out.append(float(loss))
    return out


STYLES = [(_sequential, 0.01), (_loader, 0.01), (_regression, 0.005)]


def _sgd(lr: float, **kw: float) -> MakeOpt:
    return lambda p: torch.optim.SGD(p, lr=lr, **kw)


@pytest.mark.slow  # (three detections with the probe: ~12 s of CPU)
def test_plain_sgd_stall_is_remedied_by_adam_and_trains_like_the_twin_in_three_styles() -> None:
    for run, lr in STYLES:
        found = finding_of(lambda: run(_sgd(lr)), CHECKS, "optimizer.plain-sgd-stalls")  # noqa: B023
        assert remedy_for(found).name == "adam-instead-of-plain-sgd"  # type: ignore[union-attr]
        bug = run(_sgd(lr))
        twin = run(lambda p: torch.optim.Adam(p, lr=1e-3))
        assert sum(twin[-20:]) < 0.8 * sum(bug[-20:]), (run.__name__, bug[-1], twin[-1])
        with remedied(found):
            fixed = run(_sgd(lr))
        assert fixed == twin, run.__name__


def test_other_optimizers_are_untouched_by_the_adam_remedy() -> None:
    finding = {"optimizer": "opt", "optimizer_class": "SGD", "lr": "0.01", "probe_best": "Adam at lr 1e-3"}
    makers = [_sgd(0.01, momentum=0.9), _sgd(0.1), lambda p: torch.optim.Adam(p, lr=3e-4),
              lambda p: torch.optim.RMSprop(p, lr=0.01)]
    plain = [_sequential(m, steps=40) for m in makers]
    with apply_remedy("optimizer.plain-sgd-stalls", "opt", **finding):
        again = [_sequential(m, steps=40) for m in makers]
    assert again == plain


def test_lr_too_low_whose_probe_found_momentum_gets_momentum_not_a_new_rate() -> None:
    ev = {"optimizer": "opt", "optimizer_class": "SGD", "lr": "0.01", "probe_best": "lr 0.01 with momentum 0.9",
          "update_ratio_median": 1e-5, "suggest_low": "0.0033", "suggest_high": "0.01"}
    assert remedy_for({"code": "lr.too-low", "evidence": ev}).name == "momentum"  # type: ignore[union-attr]
    for run, lr in STYLES:
        twin = run(_sgd(lr, momentum=0.9))
        with apply_remedy("lr.too-low", "opt", **{**ev, "lr": str(lr)}):
            fixed = run(_sgd(lr))
        assert fixed == twin, run.__name__
    with apply_remedy("lr.too-low", "opt", **ev):  # SGD at another rate, or with its own momentum: untouched
        other = (_sequential(_sgd(0.05), steps=30), _sequential(_sgd(0.01, momentum=0.5), steps=30))
    assert other == (_sequential(_sgd(0.05), steps=30), _sequential(_sgd(0.01, momentum=0.5), steps=30))


def test_a_shallower_tower_that_learns_at_10x_the_rate_gets_the_probed_rate_and_trains_like_its_twin() -> None:
    found = finding_of(lambda: _loader(_sgd(0.01), depth=6), CHECKS, "lr.too-low")
    assert found["evidence"]["probe_best"] == "lr 0.1" and suggested_lr(found) == 0.1
    bug, twin = _loader(_sgd(0.01), depth=6), _loader(_sgd(0.1), depth=6)
    assert sum(twin[-20:]) < 0.8 * sum(bug[-20:])
    with remedied(found):
        fixed = _loader(_sgd(0.01), depth=6)
    assert fixed == twin


def test_a_rate_the_probe_measured_working_is_the_suggested_rate() -> None:
    probed = {"code": "lr.too-low", "evidence": {"lr": "1e-4", "update_ratio_median": 2e-5, "probe_best": "lr 0.001",
                                                 "suggest_low": "3.3e-4", "suggest_high": "0.001"}}
    assert suggested_lr(probed) == 1e-3
    assert remedy_for(probed).name == "learning-rate"  # type: ignore[union-attr]
    measured = {"code": "lr.too-low", "evidence": {"lr": "1e-4", "update_ratio_median": 2e-5}}
    assert suggested_lr(measured) == 1e-4 * 1e-2 / 2e-5  # (no probe: the update ratio's rate, as before)


def test_the_edits_swap_sgd_for_adam_or_add_momentum_at_the_optimizer_line(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from helpers import apply_diff

    from nndoctor.fix.edits import source_edit

    script = tmp_path / "train.py"
    text = ("import torch\nmodel = torch.nn.Linear(3, 1)\n"
            "opt = torch.optim.SGD(model.parameters(), lr=0.01, weight_decay=1e-4)\n")
    script.write_text(text)
    stall = {"code": "optimizer.plain-sgd-stalls", "location": "opt",
             "evidence": {"optimizer": "opt", "lr": "0.01", "probe_best": "Adam at lr 1e-3"}}
    edit = source_edit([("adam-instead-of-plain-sgd", stall)], "use Adam", str(script))
    assert edit.line == 3 and edit.diff
    assert "opt = torch.optim.Adam(model.parameters(), lr=0.001, weight_decay=1e-4)" in apply_diff(edit.diff, text)
    slow = {"code": "lr.too-low", "location": "opt",
            "evidence": {"optimizer": "opt", "lr": "0.01", "probe_best": "lr 0.01 with momentum 0.9"}}
    edit = source_edit([("momentum", slow)], "add momentum", str(script))
    assert "lr=0.01, weight_decay=1e-4, momentum=0.9)" in apply_diff(edit.diff or "", text)
