"""labels.target-noise-too-strong: noise as large as the regression targets' spread added in the
training step, in several styles; small jitter, noise drawn once with the data, noise as the target
(diffusion), input noise and autoencoders of noisy data stay quiet."""

from __future__ import annotations

import contextlib
from typing import Callable

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset, TensorDataset

from nndoctor.findings import Severity
from nndoctor.fix.remedies import remedy_for
from nndoctor.monitor import Observer
from nndoctor.monitor.checks.target_noise import TargetNoiseDrownsSignal

CODE = "labels.target-noise-too-strong"
Noise = Callable[[torch.Tensor], torch.Tensor]


def _data(n: int = 320) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, 6, generator=g)
    return x, x @ torch.tensor([1.0, -0.5, 0.8, 0.0, 0.3, -1.2]) / 1.85          # targets of std ~1


def _hits(obs: Observer) -> list:
    assert not obs.internal_errors, obs.internal_errors
    return [f for f in obs.findings if f.code == CODE]


def _loader_run(noise: Noise, module_loss: bool = False) -> list:
    torch.manual_seed(0)
    x, y = _data()
    model = nn.Sequential(nn.Linear(6, 32), nn.ReLU(), nn.Linear(32, 1))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    crit = nn.MSELoss()
    with Observer(checks=[TargetNoiseDrownsSignal]) as obs:
        for _ in range(2):
            for xb, yb in DataLoader(TensorDataset(x, y), batch_size=32, shuffle=True):
                out = model(xb).squeeze(1)
                loss = crit(out, noise(yb)) if module_loss else F.mse_loss(out, noise(yb))
                opt.zero_grad()
                loss.backward()
                opt.step()
    return _hits(obs)


def _by_hand_run(noise: Noise) -> list:
    """A module-less network (weights as plain tensors), batches sliced by hand, L1 loss."""
    torch.manual_seed(0)
    x, y = _data()
    w = torch.zeros(6, 1, requires_grad=True)
    opt = torch.optim.SGD([w], lr=0.05)
    with Observer(checks=[TargetNoiseDrownsSignal]) as obs:
        for i in range(0, 320, 20):
            loss = F.l1_loss((x[i:i + 20] @ w).squeeze(1), noise(y[i:i + 20]))
            opt.zero_grad()
            loss.backward()
            opt.step()
    return _hits(obs)


def _inplace(yb: torch.Tensor) -> torch.Tensor:
    yb = yb.clone()
    yb.add_(torch.randn_like(yb) * 2.0)
    return yb


@pytest.mark.parametrize("noise", [
    lambda yb: yb + 2.0 * torch.randn_like(yb),
    lambda yb: torch.normal(yb, 1.8),
    _inplace,
    lambda yb: yb + (torch.rand_like(yb) - 0.5) * 8,
], ids=["randn_like", "normal", "inplace", "uniform"])
def test_drowning_target_noise_is_caught(noise: Noise) -> None:
    for hits in (_loader_run(noise), _loader_run(noise, module_loss=True), _by_hand_run(noise)):
        assert hits and hits[0].severity == Severity.WARNING and hits[0].evidence["noise_ratio"] >= 1, hits


class _NoisyTargets(Dataset):
    """Noise added to each example's target in ``__getitem__`` (collated by torch.stack)."""

    def __init__(self, scale: float) -> None:
        self.x, self.y = _data()
        self.scale = scale

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.x[i], self.y[i] + self.scale * torch.randn(())


@pytest.mark.parametrize("scale,caught", [(3.0, True), (0.05, False)])
def test_noise_per_example_in_a_dataset(scale: float, caught: bool) -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 1))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    with Observer(checks=[TargetNoiseDrownsSignal]) as obs:
        for _ in range(2):
            for xb, yb in DataLoader(_NoisyTargets(scale), batch_size=32, shuffle=True):
                loss = F.mse_loss(model(xb).squeeze(1), yb)
                opt.zero_grad()
                loss.backward()
                opt.step()
    assert bool(_hits(obs)) is caught


@pytest.mark.parametrize("noise", [
    lambda yb: yb + 0.05 * torch.randn_like(yb),
    lambda yb: yb + 0.3 * torch.randn_like(yb),
    lambda yb: yb,
], ids=["jitter", "small", "clean"])
def test_small_target_jitter_stays_quiet(noise: Noise) -> None:
    assert not _loader_run(noise)
    assert not _by_hand_run(noise)


def test_noise_of_a_synthetic_data_set_made_once_stays_quiet() -> None:
    torch.manual_seed(0)
    x = torch.randn(320, 6)
    y = x[:, 0] + 3.0 * torch.randn(320)                           # noisy data, drawn once
    model = nn.Linear(6, 1)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    with Observer(checks=[TargetNoiseDrownsSignal]) as obs:
        for _ in range(3):
            for i in range(0, 320, 32):
                loss = F.mse_loss(model(x[i:i + 32]).squeeze(1), y[i:i + 32])
                opt.zero_grad()
                loss.backward()
                opt.step()
    assert not _hits(obs)


def _slice_run(step: Callable[[nn.Module, torch.Tensor], torch.Tensor]) -> list:
    torch.manual_seed(0)
    x, _ = _data()
    model = nn.Sequential(nn.Linear(6, 32), nn.ReLU(), nn.Linear(32, 6))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    with Observer(checks=[TargetNoiseDrownsSignal]) as obs:
        for i in range(0, 320, 20):
            loss = step(model, x[i:i + 20])
            opt.zero_grad()
            loss.backward()
            opt.step()
    return _hits(obs)


def _diffusion(model: nn.Module, xb: torch.Tensor) -> torch.Tensor:
    noise = torch.randn_like(xb)
    t = torch.rand(len(xb), 1)
    return F.mse_loss(model((1 - t).sqrt() * xb + t.sqrt() * noise), noise)       # noise as the target


def _denoising(model: nn.Module, xb: torch.Tensor) -> torch.Tensor:
    return F.mse_loss(model(xb + 2.0 * torch.randn_like(xb)), xb)                 # noise on the input


def _noisy_autoencoder(model: nn.Module, xb: torch.Tensor) -> torch.Tensor:
    noisy = xb + 2.0 * torch.randn_like(xb)
    return F.mse_loss(model(noisy), noisy)                                         # the same noise in and out


@pytest.mark.parametrize("step", [_diffusion, _denoising, _noisy_autoencoder], ids=lambda f: f.__name__[1:])
def test_noise_as_the_task_or_on_the_inputs_stays_quiet(step: Callable[[nn.Module, torch.Tensor], torch.Tensor]) -> None:
    assert not _slice_run(step)


def _strong(yb: torch.Tensor) -> torch.Tensor:
    return yb + 2.0 * torch.randn_like(yb)


def test_the_fix_remedy_shrinks_the_noise() -> None:
    (hit,) = _loader_run(_strong)
    finding = {"code": CODE, "location": hit.location, "evidence": hit.evidence}
    remedy = remedy_for(finding)
    assert remedy is not None and remedy.name == "less-target-noise"
    with contextlib.ExitStack() as stack:
        remedy.install(finding, stack)
        assert not _loader_run(_strong)                           # noise scaled to 0.3 of the targets' spread
