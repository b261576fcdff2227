"""optimizer: settings other than lr that break training, read at each optimizer's first step."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from nndoctor.findings import Severity
from nndoctor.monitor import Observer
from nndoctor.monitor.checks.optimizer import OptimizerSettings


def _train(make, steps=5):
    torch.manual_seed(0)
    x = torch.randn(128, 10)
    y = (x[:, 0] > 0).long()
    model = nn.Sequential(nn.Linear(10, 32), nn.ReLU(), nn.Linear(32, 2))
    with Observer(checks=[OptimizerSettings]) as obs:
        opt = make(model.parameters())
        for i in range(steps):
            opt.zero_grad()
            F.cross_entropy(model(x[i * 16:(i + 1) * 16]), y[i * 16:(i + 1) * 16]).backward()
            opt.step()
    return obs.findings


@pytest.mark.parametrize("make", [
    lambda p: torch.optim.Adam(p, 1e-3),
    lambda p: torch.optim.AdamW(p, 1e-3, betas=(0.9, 0.95), weight_decay=0.1),
    lambda p: torch.optim.Adam(p, 2e-4, betas=(0.5, 0.999)),
    lambda p: torch.optim.Adam(p, 1e-3, eps=1e-3),
    lambda p: torch.optim.SGD(p, 0.1, momentum=0.9, nesterov=True, weight_decay=5e-4),
    lambda p: torch.optim.SGD(p, 0.1, momentum=0.99, dampening=0.5),
    lambda p: torch.optim.RMSprop(p, 1e-3, momentum=0.9),
    lambda p: torch.optim.Adagrad(p, 1e-2),
    lambda p: torch.optim.NAdam(p, 2e-3),
], ids=["adam", "adamw-llm", "adam-gan", "adam-eps-1e-3", "sgd-nesterov", "sgd-dampening", "rmsprop",
        "adagrad", "nadam"])
def test_sane_settings_are_quiet(make):
    assert not _train(make)


def test_large_adam_eps_is_compared_with_the_gradient_scale():
    found = _train(lambda p: torch.optim.Adam(p, 1e-3, eps=1.0))
    assert [f.code for f in found] == ["optimizer.adam-eps"]
    ev = found[0].evidence
    assert ev["damping"] >= 10 and ev["grad_rms"] < 0.1 and ev["value"] == 1.0
    assert found[0].location == "opt"
    assert "eps=1e-8" in found[0].fixes[0]


@pytest.mark.parametrize("eps", [0.0, 1e-16])
def test_zero_or_negligible_eps(eps):
    found = _train(lambda p: torch.optim.AdamW(p, 1e-3, eps=eps))
    assert [(f.code, f.severity) for f in found] == [("optimizer.adam-eps", Severity.WARNING)]


def test_swapped_betas():
    found = _train(lambda p: torch.optim.Adam(p, 1e-3, betas=(0.999, 0.9)))
    assert [f.code for f in found] == ["optimizer.adam-betas"]
    assert "swapped" in found[0].message


@pytest.mark.parametrize("make,setting", [
    (lambda p: torch.optim.SGD(p, 0.01, momentum=1.0), "momentum"),
    (lambda p: torch.optim.SGD(p, 0.01, momentum=0.9, dampening=1.0), "dampening"),
    (lambda p: torch.optim.RMSprop(p, 0.01, alpha=1.0), "alpha"),
])
def test_settings_that_break_every_step_are_errors(make, setting):
    found = _train(make)
    assert [(f.code, f.severity, f.evidence["setting"]) for f in found] == [
        ("optimizer.bad-setting", Severity.ERROR, setting)]


def test_maximize_and_per_group_location():
    def make(params):
        params = list(params)
        return torch.optim.SGD([{"params": params[:2]}, {"params": params[2:], "maximize": True}], lr=0.01)
    found = _train(make)
    assert [(f.code, f.location) for f in found] == [("optimizer.maximize", "opt.param_groups[1]")]


def test_settings_changed_after_construction_are_seen():
    def make(params):
        opt = torch.optim.SGD(params, lr=0.01, momentum=0.9)
        opt.param_groups[0]["weight_decay"] = -0.01
        return opt
    found = _train(make)
    assert [f.evidence["setting"] for f in found] == ["weight_decay"]


def test_torch_rejecting_a_setting_is_explained():
    model = nn.Linear(4, 2)
    with pytest.raises(ValueError):
        with Observer(checks=[OptimizerSettings]) as obs:
            torch.optim.SGD(model.parameters(), lr=0.01, nesterov=True)
    found = obs.findings
    assert [(f.code, f.severity) for f in found] == [("optimizer.bad-setting", Severity.ERROR)]
    assert found[0].evidence["setting"] == "nesterov"
    assert "test_optimizer.py" in found[0].location


def test_other_crashes_are_not_claimed():
    with pytest.raises(ValueError):
        with Observer(checks=[OptimizerSettings]) as obs:
            raise ValueError("Invalid momentum value: -1 (but raised by the user's own code)")
    assert not obs.findings


def test_dqn_style_rmsprop_eps_is_not_judged_like_adam():
    assert not _train(lambda p: torch.optim.RMSprop(p, 2.5e-4, alpha=0.95, eps=0.01))
