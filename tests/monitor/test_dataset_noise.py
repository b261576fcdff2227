"""Noise drawn with numpy inside Dataset.__getitem__ (unseen by the torch-op tracking), measured at
the end of the run: far too strong input noise is regularization.input-noise-too-strong, far too
strong target noise labels.target-noise-too-strong; small noise, clean data and denoising pairs stay quiet."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset

from nndoctor.monitor import Observer
from nndoctor.monitor.checks.data.index_ignored import IndexIgnored
from nndoctor.monitor.checks.input_noise import InputNoiseDrownsSignal
from nndoctor.monitor.checks.target_noise import TargetNoiseDrownsSignal

INPUT, TARGET = "regularization.input-noise-too-strong", "labels.target-noise-too-strong"


class Noisy(Dataset):
    def __init__(self, style: str, scale: float, n: int = 256) -> None:
        rng = np.random.RandomState(0)
        self.x = rng.randn(n, 6).astype(np.float32)
        self.y = (self.x[:, 0] - self.x[:, 1]).astype(np.float32)
        self.style, self.scale = style, scale

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int):
        x, y = self.x[i], self.y[i]
        if self.style == "normal":
            x = x + np.random.normal(0, self.scale, x.shape)
        elif self.style == "randn":
            x = (x + self.scale * np.random.randn(*x.shape)).astype(np.float32)
        elif self.style == "uniform":
            x = x + np.random.uniform(-self.scale, self.scale, size=x.shape) * 1.7
        elif self.style == "target":
            y = y + np.random.normal(0, self.scale)
        elif self.style == "denoise":
            return torch.tensor(x + np.random.normal(0, self.scale, x.shape), dtype=torch.float32), torch.tensor(x)
        return torch.tensor(x, dtype=torch.float32), torch.tensor(y, dtype=torch.float32)


def _run(dataset: Dataset) -> set[str]:
    torch.manual_seed(0)
    random.seed(0)
    np.random.seed(0)
    model = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 6 if dataset.style == "denoise" else 1))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    with Observer(checks=[IndexIgnored, InputNoiseDrownsSignal, TargetNoiseDrownsSignal]) as obs:
        for _ in range(2):
            for xb, yb in DataLoader(dataset, batch_size=32, shuffle=True):
                out = model(xb)
                loss = F.mse_loss(out if dataset.style == "denoise" else out.squeeze(1), yb)
                opt.zero_grad()
                loss.backward()
                opt.step()
    assert not obs.internal_errors, obs.internal_errors
    return {f.code for f in obs.findings if f.severity.name == "WARNING"}


@pytest.mark.parametrize("style", ["normal", "randn", "uniform"])
def test_strong_numpy_input_noise_in_getitem_is_caught(style: str) -> None:
    assert _run(Noisy(style, 3.0)) == {INPUT}


def test_strong_numpy_target_noise_in_getitem_is_caught() -> None:
    assert _run(Noisy("target", 3.0)) == {TARGET}


@pytest.mark.parametrize("style,scale", [("normal", 0.1), ("randn", 0.3), ("target", 0.2), ("plain", 0.0),
                                         ("denoise", 3.0)])
def test_small_noise_clean_data_and_denoising_stay_quiet(style: str, scale: float) -> None:
    assert not _run(Noisy(style, scale))


def test_the_read_leaves_numpy_as_it_was() -> None:
    from nndoctor.monitor.checks.input_noise import noise_ratio
    from nndoctor.monitor.dataset_noise import numpy_noise

    original = np.random.normal
    np.random.seed(3)
    before = np.random.rand()
    np.random.seed(3)
    found = numpy_noise(Noisy("normal", 3.0), 0, noise_ratio)
    assert found is not None and found[0] > 2 and abs(found[2] - 1.0) < 1e-6
    assert np.random.rand() == before and np.random.normal is original
