"""regularization.weights-clipped: WGAN-style weight clamping in an ordinary regressor (two coding
styles) is a warning when the loss stalls; a WGAN critic (two optimizers) is info; no clamp, or a
box too wide to bind, stays quiet."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from nndoctor.findings import Severity
from nndoctor.monitor import Observer, Schedule
from nndoctor.monitor.checks.weight_clip import ClippedWeights

CODE = "regularization.weights-clipped"
_G = torch.Generator().manual_seed(0)
X = torch.randn(256, 8, generator=_G)
Y = X @ torch.randn(8, 1, generator=_G) * 2


def _mlp() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Linear(32, 32), nn.ReLU(), nn.Linear(32, 1))


def _regress(clip: float | None, style: str = "data", steps: int = 40) -> list:
    model = _mlp()
    opt = torch.optim.RMSprop(model.parameters(), lr=1e-3)
    with Observer(checks=[ClippedWeights], schedule=Schedule(dense=4, every=3)) as obs:
        for i in range(steps):
            xb, yb = X[i % 8 * 32:(i % 8 + 1) * 32], Y[i % 8 * 32:(i % 8 + 1) * 32]
            opt.zero_grad()
            F.mse_loss(model(xb), yb).backward()
            opt.step()
            if clip is not None:
                if style == "data":
                    for p in model.parameters():
                        p.data.clamp_(-clip, clip)
                else:
                    with torch.no_grad():
                        for p in model.parameters():
                            p.clamp_(min=-clip, max=clip)
    assert not obs.internal_errors, obs.internal_errors
    return [f for f in obs.findings if f.code == CODE]


@pytest.mark.parametrize("style", ["data", "no_grad"])
def test_wgan_clipping_in_a_regressor_that_stalls_is_a_warning(style):
    found = _regress(0.01, style)
    assert len(found) == 1 and found[0].severity is Severity.WARNING, found
    assert found[0].evidence["bound"] == pytest.approx(0.01) and found[0].evidence["stalled"]


@pytest.mark.parametrize("clip", [None, 5.0])
def test_no_clamp_or_a_box_that_never_binds_is_quiet(clip):
    assert _regress(clip) == []


def test_a_wgan_critic_is_info():
    torch.manual_seed(0)
    gen, critic = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 8)), _mlp()
    opt_c = torch.optim.RMSprop(critic.parameters(), lr=5e-5)
    opt_g = torch.optim.RMSprop(gen.parameters(), lr=5e-5)
    with Observer(checks=[ClippedWeights], schedule=Schedule(dense=4, every=3)) as obs:
        for i in range(40):
            real = X[i % 8 * 32:(i % 8 + 1) * 32]
            opt_c.zero_grad()
            (critic(gen(torch.randn(32, 4)).detach()).mean() - critic(real).mean()).backward()
            opt_c.step()
            for p in critic.parameters():
                p.data.clamp_(-0.01, 0.01)
            opt_g.zero_grad()
            (-critic(gen(torch.randn(32, 4))).mean()).backward()
            opt_g.step()
    assert not obs.internal_errors
    found = [f for f in obs.findings if f.code == CODE]
    assert [f.severity for f in found] == [Severity.INFO], found


def test_a_tiny_unclamped_linear_model_is_not_a_box():
    """A single 2x2 weight: its one largest entry is 25% of the entries by itself (a logistic
    regression on two features, tests/corpus_ported/fit_linear_model_on_circles.py, was reported);
    the same model clamped ties several entries at the bound and is still found."""
    g = torch.Generator().manual_seed(1)
    x = torch.randn(400, 2, generator=g)
    y = ((x ** 2).sum(1) > 1.4).long()

    def fit(clip: float | None) -> list:
        torch.manual_seed(0)
        model = nn.Sequential(nn.Linear(2, 2))
        opt = torch.optim.Adam(model.parameters(), lr=1e-2)
        with Observer(checks=[ClippedWeights], schedule=Schedule(dense=4, every=3)) as obs:
            for i in range(60):
                opt.zero_grad()
                F.cross_entropy(model(x[i % 8 * 50:(i % 8 + 1) * 50]), y[i % 8 * 50:(i % 8 + 1) * 50]).backward()
                opt.step()
                if clip is not None:
                    with torch.no_grad():
                        model[0].weight.clamp_(-clip, clip)
        assert not obs.internal_errors, obs.internal_errors
        return [f for f in obs.findings if f.code == CODE]

    assert fit(None) == []
    assert len(fit(0.01)) == 1
