"""Noise prediction (diffusion, denoising): a loss whose target is the random noise the script drew.

Its floor is unknown and often close to the constant prediction's: on Gaussian data a DDPM's best
possible epsilon-prediction loss is the mean of the schedule's alpha-bar (about 0.8 of the
constant prediction's here), so a loss that flattens there is not underfitting, nor a plateau of a
model too small (real script: tanelp/tiny-diffusion ddpm.py, fit.underfitting and
loss-curve.plateaus on the code before). Data targets, jittered or not, are still judged.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from nndoctor.monitor import Observer
from nndoctor.monitor.checks.fit import Fit
from nndoctor.monitor.checks.loss_curve import LossCurve
from nndoctor.monitor.checks.lr import LearningRate
from nndoctor.monitor.noise_targets import noise_target

CHECKS = [Fit, LossCurve, LearningRate]
T = 50


def _draw(style: str, x0: torch.Tensor) -> torch.Tensor:
    if style == "randn":
        return torch.randn(x0.shape)
    if style == "randn_like":
        return torch.randn_like(x0)
    return torch.empty_like(x0).normal_()  # in place


def _ddpm(style: str, time_scale: float, steps: int = 400, module_loss: bool = False):
    """A DDPM on 2-D Gaussian data: the model sees x_t and t and predicts the noise drawn this step."""
    torch.manual_seed(0)
    abar = torch.cumprod(1 - torch.linspace(1e-4, 0.02, T), 0)
    data = torch.randn(4096, 2)
    model = nn.Sequential(nn.Linear(3, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 2))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    losses = []
    with Observer(checks=CHECKS) as obs:
        for i in range(steps):
            x0 = data[(i * 64) % 4032:(i * 64) % 4032 + 64]
            t = torch.randint(0, T, (64,))
            eps = _draw(style, x0)
            a, b = abar[t].sqrt().unsqueeze(1), (1 - abar[t]).sqrt().unsqueeze(1)
            pred = model(torch.cat([a * x0 + b * eps, t.unsqueeze(1).float() / time_scale], 1))
            loss = nn.MSELoss()(pred, eps) if module_loss else F.mse_loss(pred, eps)
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
    floor = float(abar.mean())  # E[eps | x_t] = b * x_t on unit Gaussian data: residual a^2, averaged over t
    return obs, sum(losses[-100:]) / 100, floor


@pytest.mark.parametrize("style", ["randn", "randn_like", "normal_"])
def test_noise_prediction_at_its_floor_is_not_underfitting(style):
    # raw time steps as an input (0..49): a large first loss, then it converges to the best possible
    obs, level, floor = _ddpm(style, time_scale=1.0)
    assert level < 1.1 * floor  # the model is at (about) the best any model can do
    report = obs.report()
    assert noise_target(obs.state)
    assert not report.at_least("warning"), [(f.code, f.message) for f in report.findings]
    (f,) = report.by_code("fit.underfitting")  # at most an info, saying why
    assert f.severity == "info" and "random noise" in f.message and f.evidence["noise_targets"]


def test_noise_prediction_flat_from_the_start_is_not_a_plateau_warning():
    obs, level, floor = _ddpm("randn_like", time_scale=float(T), module_loss=True)
    assert level < 1.15 * floor
    report = obs.report()
    assert not report.at_least("warning"), [(f.code, f.message) for f in report.findings]
    (f,) = report.by_code("loss-curve.plateaus")
    assert f.severity == "info" and f.evidence["noise_targets"]


def _sine_regression(jitter: bool, noisy_input: bool):
    """A linear model on a sine: real underfitting, whatever noise the script adds to its data."""
    torch.manual_seed(0)
    x = torch.linspace(-3, 3, 2048)[torch.randperm(2048)].unsqueeze(1)  # shuffled once
    y = torch.sin(3 * x)
    model = nn.Linear(1, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    with Observer(checks=CHECKS) as obs:
        for i in range(300):
            j = (i * 32) % 2016
            xb, yb = x[j:j + 32], y[j:j + 32]
            if noisy_input:
                xb = xb + 0.05 * torch.randn_like(xb)
            if jitter:
                yb = yb + 0.05 * torch.randn(yb.shape)  # data plus noise: still data
            loss = F.mse_loss(model(xb), yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
    return obs


@pytest.mark.parametrize("jitter,noisy_input", [(True, False), (False, True)])
def test_data_targets_with_noise_are_still_judged(jitter, noisy_input):
    obs = _sine_regression(jitter, noisy_input)
    assert not noise_target(obs.state)
    (f,) = obs.report().by_code("fit.underfitting")
    assert f.severity == "warning" and not f.evidence["noise_targets"]


def test_random_targets_the_model_never_sees_are_still_judged():
    """The faulty counterpart: a target drawn at random each step that never reaches the input (a placeholder
    left in) is no task at all; the plateau at the constant prediction stays a warning."""
    torch.manual_seed(0)
    data = torch.randn(4096, 2)
    model = nn.Sequential(nn.Linear(2, 64), nn.ReLU(), nn.Linear(64, 2))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    with Observer(checks=CHECKS) as obs:
        for i in range(400):
            x0 = data[(i * 64) % 4032:(i * 64) % 4032 + 64]
            target = torch.randn_like(x0)
            loss = F.mse_loss(model(x0), target)
            opt.zero_grad()
            loss.backward()
            opt.step()
    assert not noise_target(obs.state)
    report = obs.report()
    assert {f.code for f in report.at_least("warning")} & {"loss-curve.plateaus", "fit.underfitting"}, \
        [(f.code, f.severity, f.message) for f in report.findings]
