"""lr.too-low on a rate that the script itself abandons for a faster one that then trains well (a sweep
inside one script) is info; a too-low rate that stays, or a sweep of rates all too low, still warns."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from nndoctor.monitor import Observer
from nndoctor.monitor.checks.lr import LearningRate

CODE = "lr.too-low"


def _data():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(600, 10, generator=g)
    return x, (x[:, 0] + x[:, 1] - x[:, 2] > 0).float()


def _net():
    return nn.Sequential(nn.Linear(10, 32), nn.ReLU(), nn.Linear(32, 1))


def _fit(make_opt, steps, x, y):
    """A sweep member: a fresh model and optimizer, both local to the function."""
    torch.manual_seed(0)
    model = _net()
    opt = make_opt(model.parameters())
    for s in range(steps):
        j = (s * 32) % 576
        loss = F.binary_cross_entropy_with_logits(model(x[j:j + 32]).squeeze(1), y[j:j + 32])
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model


def _in_function(lrs, final_steps=150):
    x, y = _data()
    with Observer(checks=[LearningRate]) as obs:
        for lr in lrs:
            _fit(lambda p, lr=lr: torch.optim.SGD(p, lr=lr), 100, x, y)
        _fit(lambda p: torch.optim.SGD(p, lr=max(lrs)), final_steps, x, y)
    return obs


def _top_level(lrs, final_steps=150):
    x, y = _data()
    with Observer(checks=[LearningRate]) as obs:
        for lr in lrs + [max(lrs)]:
            torch.manual_seed(0)
            model = _net()
            opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.0)
            for s in range(100 if lr != lrs[-1] or len(lrs) == 1 else final_steps):
                j = (s * 32) % 576
                loss = F.binary_cross_entropy_with_logits(model(x[j:j + 32]).squeeze(1), y[j:j + 32])
                opt.zero_grad()
                loss.backward()
                opt.step()
    return obs


def _optimizer_classes(lrs, final_steps=150):
    """Candidates of several optimizer classes: SGD at the first rate, then Adam at the others."""
    x, y = _data()
    with Observer(checks=[LearningRate]) as obs:
        _fit(lambda p: torch.optim.SGD(p, lr=lrs[0]), 100, x, y)
        for lr in lrs[1:]:
            _fit(lambda p, lr=lr: torch.optim.Adam(p, lr=lr), final_steps, x, y)
    return obs


_STYLES = {"function": _in_function, "top_level": _top_level, "classes": _optimizer_classes}


def _low(obs):
    assert not obs.internal_errors, obs.internal_errors
    return [f for f in obs.findings if f.code == CODE]


@pytest.mark.parametrize("style", sorted(_STYLES))
def test_a_slow_rate_abandoned_for_a_fast_one_that_trains_is_info(style):
    found = _low(_STYLES[style]([1e-4, 1e-2, 1e-1]))
    assert found and all(f.severity.value == "info" and f.evidence["abandoned_for"] for f in found)


@pytest.mark.parametrize("style", sorted(_STYLES))
def test_a_sweep_of_rates_all_too_low_still_warns(style):
    found = _low(_STYLES[style]([1e-5, 3e-5 if style != "classes" else 1e-7, 1e-4 if style != "classes" else 3e-7]))
    assert any(f.severity.value == "warning" for f in found), [(f.severity, f.message) for f in found]


def test_a_too_low_rate_alone_still_warns():
    found = _low(_in_function([1e-5], final_steps=0))
    assert any(f.severity.value == "warning" for f in found)
