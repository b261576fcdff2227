"""The likely causes `nndoctor overfit` ranks for each symptom carry their catalogue fixes."""

from __future__ import annotations

import math
from typing import Any, Callable

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import nndoctor
from nndoctor.debug.overfit import _rank_causes, overfit_batch
from nndoctor.findings import Severity


def _facts(**kw):
    return {"lr": 0.5, "update_ratio": 0.3, "optimizer": "SGD", "steps": 40, "initial_loss": 2.0,
            "final_loss": float("nan"), **kw}


def test_explosion_with_huge_updates_ranks_lr_first_and_names_the_non_finite_loss():
    causes = _rank_causes("explodes", _facts(), [], [], [], (0, 0))
    codes = [c.code for c in causes]
    assert codes[0] == "lr.overfit-batch-lr-too-high" and "numerics.overfit-batch-non-finite-loss" in codes
    assert causes[0].fixes[0] == "Lower the learning rate 10x (to 0.05) or run `nndoctor lr-find`."


def test_rising_loss_with_small_updates_suspects_the_sign():
    causes = _rank_causes("goes-up", _facts(update_ratio=1e-3, final_loss=3.0), [], [], [], (0, 0))
    codes = [c.code for c in causes]
    assert "loss-curve.overfit-batch-flipped-sign" in codes and "lr.overfit-batch-lr-too-high" in codes
    assert "numerics.overfit-batch-non-finite-loss" not in codes


def test_plateau_causes():
    causes = _rank_causes("plateaus", _facts(lr=1e-5, update_ratio=1e-6, final_loss=1.9), [], ["fc1.weight"],
                          [("fc1", 1e-9), ("fc2", 1.0)], (4, 2))
    by_code = {c.code: c for c in causes}
    assert set(by_code) == {"grad-flow.overfit-batch-no-gradient", "grad.overfit-batch-vanishing",
                            "lr.overfit-batch-lr-too-low", "loss-input.overfit-batch-check-output",
                            "labels.overfit-batch-conflicting-labels"}
    assert by_code["lr.overfit-batch-lr-too-low"].fixes[0] == (
        "Raise the learning rate (try 0.0001) or run `nndoctor lr-find`.")
    assert causes[0].code == "labels.overfit-batch-conflicting-labels"  # identical inputs, different labels


def _regression(*, opt: Callable[[Any], torch.optim.Optimizer], loss: Any = None, hidden: bool = True,
                classify: bool = False) -> nndoctor.Experiment:
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(64, 12, generator=g)
    y = (x[:, :3].sum(1) > 0).long() if classify else x[:, :3].sum(1, keepdim=True)
    out = 2 if classify else 1
    model = nn.Sequential(nn.Linear(12, 32), nn.ReLU(), nn.Linear(32, out)) if hidden else nn.Linear(12, out)
    return nndoctor.Experiment(model=model, loss=loss or nn.functional.l1_loss, optimizer=opt(model.parameters()),
                               train=DataLoader(TensorDataset(x, y), batch_size=32))


def _symptom(res, code: str):
    symptom = code.removeprefix("loss-curve.overfit-batch-")
    assert not res.passed and res.symptom == symptom, (res.symptom, res.losses[:3], res.losses[-3:])
    found = res.report.by_code(code)
    assert len(found) == 1, [f.code for f in res.report.findings]
    f = found[0]
    assert f.severity is Severity.WARNING
    assert f.evidence["initial_loss"] == res.losses[0] and f.evidence["final_loss"] == res.losses[-1]
    assert f.evidence["steps"] == len(res.losses)
    assert f.evidence["likely_causes"] == [c.code for c in res.causes[:3]] and f.fixes
    return f


def test_overfit_batch_explodes_under_a_huge_sgd_learning_rate():
    res = overfit_batch(_regression(opt=lambda p: torch.optim.SGD(p, lr=1.0), loss=nn.MSELoss()), max_steps=100)
    f = _symptom(res, "loss-curve.overfit-batch-explodes")
    assert not math.isfinite(res.losses[-1]) and len(res.losses) < 20  # stops at the first non-finite loss
    assert f.evidence["lr"] == 1.0
    assert {"lr.overfit-batch-lr-too-high", "numerics.overfit-batch-non-finite-loss"} & set(
        f.evidence["likely_causes"][:2])


@pytest.mark.parametrize("opt", ["sgd", "adam"])
def test_overfit_batch_goes_up_when_the_optimizer_maximizes(opt):
    def make(maximize: bool):
        if opt == "sgd":
            return lambda p: torch.optim.SGD(p, lr=0.01, maximize=maximize)
        return lambda p: torch.optim.Adam(p, lr=1e-3, maximize=maximize)

    res = overfit_batch(_regression(opt=make(True), loss=nn.CrossEntropyLoss(), classify=True), max_steps=60)
    f = _symptom(res, "loss-curve.overfit-batch-goes-up")
    assert res.losses[-1] > 1.5 * res.losses[0] and f.evidence["final_loss"] < 10 * f.evidence["initial_loss"]
    assert res.report.by_code("optimizer.maximize")  # the registered check names the real cause
    healthy = overfit_batch(_regression(opt=make(False), loss=nn.CrossEntropyLoss(), classify=True), max_steps=60)
    assert healthy.symptom != "goes-up" and healthy.losses[-1] < healthy.losses[0]


@pytest.mark.parametrize("hidden", [True, False])
def test_overfit_batch_oscillates_with_l1_loss_and_a_large_sgd_step(hidden):
    # |error| has a constant-size gradient: a large fixed step jumps back and forth across the target
    res = overfit_batch(_regression(opt=lambda p: torch.optim.SGD(p, lr=1.0), hidden=hidden), max_steps=150)
    f = _symptom(res, "loss-curve.overfit-batch-oscillates")
    assert f.evidence["lr"] == 1.0 and f.evidence["steps"] == 150
    assert "lr.overfit-batch-lr-too-high" in f.evidence["likely_causes"]
    tail = res.losses[75:]
    assert max(tail) > 1.2 * min(tail) and max(res.losses) < 10 * res.losses[0]
    healthy = overfit_batch(_regression(opt=lambda p: torch.optim.Adam(p, lr=0.1), hidden=hidden), max_steps=150)
    assert healthy.passed, healthy.losses[-3:]  # the same task and loss with a sane step overfits
