"""Remedies of lr.plateau-scheduler-wrong-mode (the other mode), lr.cosine-schedule-wraps-around
(T_max over the run's scheduler steps), grad-flow.param-group-lr-zero (the other groups' rate),
optimizer.clip-has-no-effect (the same clip before each step) and zero-grad.manual-update-not-cleared
(a gradient cleared once a hand-written update applied it): each injected bug, found by its detector
in-process, trains like its fixed twin under the remedy; the healthy twin is left bit-identical."""

from __future__ import annotations

from typing import Any, Callable

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from helpers import apply_remedy, finding_of, remedied
from torch.optim.lr_scheduler import CosineAnnealingLR, ReduceLROnPlateau, StepLR

from nndoctor.debug.manual_zero_grad import ManualUpdateGradsNotCleared
from nndoctor.monitor.checks.clip_order import ClipHasNoEffect
from nndoctor.monitor.checks.cosine_wrap import CosineWrapsAround
from nndoctor.monitor.checks.group_lr import ParamGroupLrZero
from nndoctor.monitor.checks.plateau_mode import PlateauSchedulerWrongMode

_G = torch.Generator().manual_seed(0)
X = torch.randn(1200, 20, generator=_G)
W = torch.randn(20, 4, generator=_G)
Y = (X @ W + 0.5 * torch.randn(1200, 4, generator=_G)).argmax(1)


def _net() -> nn.Module:
    return nn.Sequential(nn.Linear(20, 32), nn.ReLU(), nn.Linear(32, 4))


def _val_loss(model: nn.Module) -> float:
    with torch.no_grad():
        return float(F.cross_entropy(model(X[800:]), Y[800:]))


# -- ReduceLROnPlateau in the wrong mode -----------------------------------------------------------
def _plateau(make: Callable[[torch.optim.Optimizer], ReduceLROnPlateau], metric: str = "loss",
             epochs: int = 10) -> float:
    torch.manual_seed(0)
    model = _net()
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    sched = make(opt)
    for _ in range(epochs):
        model.train()
        for i in range(0, 800, 32):
            opt.zero_grad()
            F.cross_entropy(model(X[i:i + 32]), Y[i:i + 32]).backward()
            opt.step()
        model.eval()
        with torch.no_grad():
            out = model(X[800:])
            loss, acc = float(F.cross_entropy(out, Y[800:])), float((out.argmax(1) == Y[800:]).float().mean())
        sched.step(loss if metric == "loss" else acc)
    return _val_loss(model)


def test_plateau_scheduler_in_the_wrong_mode_runs_in_the_right_one_in_three_styles():
    styles = (  # (faulty, twin, metric)
        (lambda o: ReduceLROnPlateau(o, mode="max", factor=0.5, patience=1),
         lambda o: ReduceLROnPlateau(o, mode="min", factor=0.5, patience=1), "loss"),
        (lambda o: ReduceLROnPlateau(o, "max", 0.3, 0), lambda o: ReduceLROnPlateau(o, "min", 0.3, 0), "loss"),
        (lambda o: ReduceLROnPlateau(o, "max", patience=0, threshold=0.01, threshold_mode="abs"),
         lambda o: ReduceLROnPlateau(o, "min", patience=0, threshold=0.01, threshold_mode="abs"), "loss"),
    )
    finding = finding_of(lambda: _plateau(styles[0][0]), [PlateauSchedulerWrongMode], "lr.plateau-scheduler-wrong-mode")
    for faulty, twin_make, metric in styles:
        bug, twin = _plateau(faulty, metric), _plateau(twin_make, metric)
        with remedied(finding):
            fixed = _plateau(faulty, metric)
            healthy = _plateau(twin_make, metric)
        assert bug != twin  # (the cut rate: better or worse, the run is not the one written)
        assert fixed == twin == healthy  # the mode flipped at creation: the twin exactly; the twin untouched


# -- a cosine schedule stepped past T_max ----------------------------------------------------------
_ALIVE: list[Any] = []  # the optimizer and scheduler outlive the run, as a script's globals do


def _cosine(t_max: int, per_batch: bool = True, positional: bool = False, eta_min: float = 0.0) -> float:
    torch.manual_seed(0)
    model = _net()
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    sched = CosineAnnealingLR(opt, t_max, eta_min) if positional else CosineAnnealingLR(opt, T_max=t_max,
                                                                                           eta_min=eta_min)
    _ALIVE[:] = [opt, sched]
    for _ in range(6):
        for i in range(0, 800, 50):
            opt.zero_grad()
            F.cross_entropy(model(X[i:i + 50]), Y[i:i + 50]).backward()
            opt.step()
            if per_batch:
                sched.step()
        if not per_batch:
            sched.step()
    return _val_loss(model)


def test_cosine_stepped_past_t_max_anneals_once_over_the_run():
    finding = finding_of(lambda: _cosine(6), [CosineWrapsAround], "lr.cosine-schedule-wraps-around")
    assert finding["evidence"]["T_max"] == 6 and finding["evidence"]["scheduler_steps"] == 96
    # a count read before the end (a script whose optimizer is gone at the end): stretched to it, then held
    early = {**finding, "evidence": {**finding["evidence"], "scheduler_steps": 74}}
    with remedied(early):
        torch.manual_seed(0)
        opt = torch.optim.SGD(_net().parameters(), lr=0.1)
        sched = CosineAnnealingLR(opt, T_max=6)
        lrs = []
        for _ in range(96):
            opt.step()
            sched.step()
            lrs.append(opt.param_groups[0]["lr"])
    assert lrs[73] == lrs[-1] == 0.0 and all(a >= b for a, b in zip(lrs, lrs[1:]))
    for positional, eta_min in ((False, 0.0), (True, 0.0), (False, 1e-3)):
        twin = _cosine(96, positional=positional, eta_min=eta_min)
        with remedied(finding):
            fixed = _cosine(6, positional=positional, eta_min=eta_min)
            per_epoch = _cosine(5, per_batch=False)  # another T_max: untouched
            other = _cosine(96)
        assert fixed == twin
        assert per_epoch == _cosine(5, per_batch=False) and other == _cosine(96)


# -- a parameter group at lr 0 ---------------------------------------------------------------------
def _groups(make: Callable[[nn.Module], torch.optim.Optimizer], sched: bool = False) -> float:
    torch.manual_seed(0)
    model = _net()
    opt = make(model)
    s = StepLR(opt, step_size=20, gamma=0.5) if sched else None
    for _ in range(3):
        for i in range(0, 800, 32):
            opt.zero_grad()
            F.cross_entropy(model(X[i:i + 32]), Y[i:i + 32]).backward()
            opt.step()
            if s is not None:
                s.step()
    return _val_loss(model)


def _two_groups(body_lr: float | None, lr: float = 3e-3) -> Callable[[nn.Module], torch.optim.Optimizer]:
    def make(m: nn.Module) -> torch.optim.Optimizer:
        body = {"params": m[0].parameters(), **({} if body_lr is None else {"lr": body_lr})}
        return torch.optim.Adam([body, {"params": m[2].parameters()}], lr=lr)
    return make


def test_group_left_at_lr_zero_trains_at_the_other_groups_rate():
    faulty = _two_groups(3e-3 * (1 // 10))  # an integer division made the body's lr 0
    finding = finding_of(lambda: _groups(faulty), [ParamGroupLrZero], "grad-flow.param-group-lr-zero")
    for sched in (False, True):
        bug, twin = _groups(faulty, sched), _groups(_two_groups(None), sched)
        with remedied(finding):
            fixed, healthy = _groups(faulty, sched), _groups(_two_groups(None), sched)
            half = _groups(_two_groups(1e-3), sched)  # a group at another non-zero rate: untouched
        assert bug > twin + 0.05, (bug, twin)
        assert fixed == twin == healthy
        assert half == _groups(_two_groups(1e-3), sched)
    # the rate given to the group follows the others' schedule (StepLR halves both)
    with remedied(finding):
        torch.manual_seed(0)
        m = _net()
        opt = faulty(m)
        s = StepLR(opt, step_size=1, gamma=0.5)
        for _ in range(2):
            F.cross_entropy(m(X[:32]), Y[:32]).backward()
            opt.step()
            s.step()
        F.cross_entropy(m(X[:32]), Y[:32]).backward()
        opt.step()
        assert opt.param_groups[0]["lr"] == opt.param_groups[1]["lr"] == 3e-3 / 4


# -- clipping where it cannot act ----------------------------------------------------------------
def _clip(step: Callable[[nn.Module, torch.optim.Optimizer, torch.Tensor, torch.Tensor], None]) -> float:
    torch.manual_seed(0)
    model = _net()
    opt = torch.optim.SGD(model.parameters(), lr=1.5)
    for _ in range(2):
        for i in range(0, 800, 32):
            step(model, opt, X[i:i + 32], Y[i:i + 32])
    return _val_loss(model)


def _clip_before_backward(model, opt, xb, yb) -> None:
    opt.zero_grad()
    nn.utils.clip_grad_norm_(model.parameters(), max_norm=0.1)
    F.cross_entropy(model(xb), yb).backward()
    opt.step()


def _clip_after_step(model, opt, xb, yb) -> None:
    opt.zero_grad()
    F.cross_entropy(model(xb), yb).backward()
    opt.step()
    nn.utils.clip_grad_norm_(model.parameters(), 0.1)


def _clip_in_place(model, opt, xb, yb) -> None:
    opt.zero_grad()
    F.cross_entropy(model(xb), yb).backward()
    nn.utils.clip_grad_norm_(model.parameters(), 0.1)
    opt.step()


def _value_after_step(model, opt, xb, yb) -> None:
    opt.zero_grad()
    F.cross_entropy(model(xb), yb).backward()
    opt.step()
    nn.utils.clip_grad_value_(model.parameters(), 0.01)


def _value_in_place(model, opt, xb, yb) -> None:
    opt.zero_grad()
    F.cross_entropy(model(xb), yb).backward()
    nn.utils.clip_grad_value_(model.parameters(), 0.01)
    opt.step()


@pytest.mark.parametrize("faulty,twin", [(_clip_before_backward, _clip_in_place), (_clip_after_step, _clip_in_place),
                                         (_value_after_step, _value_in_place)])
def test_clip_that_never_acts_is_applied_before_each_step(faulty, twin):
    finding = finding_of(lambda: _clip(faulty), [ClipHasNoEffect], "optimizer.clip-has-no-effect")
    bug, fixed_twin = _clip(faulty), _clip(twin)
    with remedied(finding):
        fixed = _clip(faulty)
    assert fixed == fixed_twin
    assert bug != fixed_twin


# -- a hand-written update whose gradients are never cleared --------------------------------------------
def _manual(style: str, clear: bool, accumulate: int = 1) -> float:
    torch.manual_seed(0)
    model = _net()
    w1 = model[0].weight.detach().clone().requires_grad_()
    b1 = model[0].bias.detach().clone().requires_grad_()
    w2 = model[2].weight.detach().clone().requires_grad_()
    b2 = model[2].bias.detach().clone().requires_grad_()
    tensors = [w1, b1, w2, b2]
    for step, i in enumerate(list(range(0, 800, 16)) * 2):
        xb, yb = X[i:i + 16], Y[i:i + 16]
        if style == "tensors":
            F.cross_entropy(F.linear(torch.relu(F.linear(xb, w1, b1)), w2, b2), yb).backward()
            params = tensors
        else:
            F.cross_entropy(model(xb), yb).backward()
            params = list(model.parameters())
        if (step + 1) % accumulate:
            continue
        with torch.no_grad():
            for p in params:
                if style == "data":
                    p.data -= 0.3 * p.grad.data
                else:
                    p -= 0.3 * p.grad
        if clear:
            for p in params:
                p.grad.zero_()
    if style == "tensors":
        model = nn.Sequential(nn.Linear(20, 32), nn.ReLU(), nn.Linear(32, 4))
        with torch.no_grad():
            for p, t in zip(model.parameters(), tensors):
                p.copy_(t)
    return _val_loss(model)


def test_manual_update_without_clearing_gets_its_gradients_cleared_in_three_styles():
    finding = finding_of(lambda: _manual("tensors", clear=False), [ManualUpdateGradsNotCleared],
                       "zero-grad.manual-update-not-cleared")
    for style in ("tensors", "module", "data"):
        bug, twin = _manual(style, clear=False), _manual(style, clear=True)
        with remedied(finding):
            fixed = _manual(style, clear=False)
            healthy = _manual(style, clear=True)
            accumulated = _manual(style, clear=True, accumulate=4)
        assert bug > twin + 0.1, (style, bug, twin)
        assert fixed == twin == healthy, style
        assert accumulated == _manual(style, clear=True, accumulate=4)  # accumulation kept


def test_remedies_leave_an_optimizer_run_without_the_bugs_bit_identical():
    plain = _groups(_two_groups(None), sched=True)
    for code, ev in (("lr.plateau-scheduler-wrong-mode", {"mode": "max", "right_mode": "min"}),
                     ("lr.cosine-schedule-wraps-around", {"T_max": 6, "scheduler_steps": 96}),
                     ("grad-flow.param-group-lr-zero", {"group": 0, "groups": 2}),
                     ("zero-grad.manual-update-not-cleared", {})):
        with apply_remedy(code, **ev):
            assert _groups(_two_groups(None), sched=True) == plain, code
