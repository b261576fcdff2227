"""regularization.input-noise-too-strong: noise augmentation far above the inputs' spread, in
several styles; ordinary noise, input dropout, mixup, flips, denoising and diffusion stay quiet."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

from nndoctor.findings import Severity
from nndoctor.monitor import Observer
from nndoctor.monitor.checks.input_noise import InputNoiseDrownsSignal, noise_ratio

CODE = "regularization.input-noise-too-strong"


def _data(n: int = 320):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, 12, generator=g)
    return x, (x[:, 0] + x[:, 1] > 0).long()


class Net(nn.Module):
    def __init__(self, out: int = 2) -> None:
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(12, 32), nn.Linear(32, out)

    def forward(self, x):
        return self.fc2(torch.relu(self.fc1(x)))


def _hits(obs: Observer):
    assert not obs.internal_errors, obs.internal_errors
    return [f for f in obs.findings if f.code == CODE]


def _slice_run(augment, steps: int = 12, target_is_input: bool = False):
    torch.manual_seed(0)
    x, y = _data()
    model = nn.Sequential(nn.Linear(12, 32), nn.ReLU(), nn.Linear(32, 12 if target_is_input else 2))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    with Observer(checks=[InputNoiseDrownsSignal]) as obs:
        for step in range(steps):
            i = (step * 32) % len(x)
            xb, yb = x[i:i + 32], y[i:i + 32]
            xin = augment(xb)
            out = model(xin)
            loss = F.mse_loss(out, xb) if target_is_input else F.cross_entropy(out, yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
    return _hits(obs)


def _loader_run(augment, steps: int = 12):
    torch.manual_seed(0)
    x, y = _data()
    model = Net()
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    crit = nn.CrossEntropyLoss()
    with Observer(checks=[InputNoiseDrownsSignal]) as obs:
        for xb, yb in DataLoader(TensorDataset(x, y), batch_size=32, shuffle=True):
            xb = augment(xb)
            opt.zero_grad()
            crit(model(xb), yb).backward()
            opt.step()
    return _hits(obs)


def _inplace(xb):
    xb = xb.clone()
    xb.add_(torch.randn_like(xb), alpha=3.0)
    return xb


@pytest.mark.parametrize("augment", [
    lambda xb: xb + 3.0 * torch.randn_like(xb),
    lambda xb: (xb + torch.randn(xb.shape) * 2.5).float(),
    lambda xb: torch.normal(xb, 3.0),
    _inplace,
    lambda xb: xb + (torch.rand_like(xb) - 0.5) * 12,
])
def test_drowning_noise_is_caught(augment):
    for hits in (_slice_run(augment), _loader_run(augment)):
        assert hits and hits[0].severity == Severity.WARNING and hits[0].evidence["noise_ratio"] >= 2, hits


def _mixup(xb):
    lam = 0.7
    return lam * xb + (1 - lam) * xb[torch.randperm(len(xb))]


def _flip(xb):
    return torch.where(torch.rand(len(xb), 1) < 0.5, xb.flip(1), xb)


def _diffusion(xb):
    t = torch.rand(len(xb), 1)
    return (1 - t).sqrt() * xb + t.sqrt() * torch.randn_like(xb)  # per-example scale: a noise schedule


@pytest.mark.parametrize("augment", [
    lambda xb: xb + 0.1 * torch.randn_like(xb),
    lambda xb: xb + 0.3 * torch.randn_like(xb),
    lambda xb: F.dropout(xb, 0.2),
    _mixup,
    _flip,
    _diffusion,
    lambda xb: xb,
])
def test_ordinary_augmentation_stays_quiet(augment):
    assert not _slice_run(augment)


@pytest.mark.parametrize("batch", [None, 64])
def test_noise_of_a_synthetic_data_set_made_once_is_not_augmentation(batch):
    # x = signal + noise drawn once before training (full batch, or sliced without a copy per step):
    # the data set's own noise; drawing it again for every batch is the augmentation
    torch.manual_seed(0)
    with Observer(checks=[InputNoiseDrownsSignal]) as obs:
        y = torch.randint(0, 2, (320,))
        x = F.one_hot(y, 2).float() @ torch.randn(2, 12) * 0.5 + torch.randn(320, 12)
        model = Net()
        opt = torch.optim.Adam(model.parameters(), lr=1e-2)
        for _ in range(20):
            out = model(x) if batch is None else model(x.view(320, 12))
            loss = F.cross_entropy(out, y)
            opt.zero_grad()
            loss.backward()
            opt.step()
    assert not _hits(obs)


def test_denoising_autoencoder_stays_quiet():
    assert not _slice_run(lambda xb: xb + 3.0 * torch.randn_like(xb), target_is_input=True)


def test_noise_ratio():
    x = torch.randn(64, 10)
    assert 2.5 < noise_ratio(x, 3 * torch.randn(64, 10)) < 3.5
    assert noise_ratio(torch.ones(4, 3), torch.randn(4, 3)) is None


def test_instance_noise_of_a_gan_discriminator_is_info_at_most():
    torch.manual_seed(0)
    x, _ = _data()
    gen = nn.Sequential(nn.Linear(4, 12))
    disc = nn.Sequential(nn.Linear(12, 16), nn.ReLU(), nn.Linear(16, 1))
    opt_g = torch.optim.Adam(gen.parameters(), lr=1e-3)
    opt_d = torch.optim.Adam(disc.parameters(), lr=1e-3)
    with Observer(checks=[InputNoiseDrownsSignal]) as obs:
        for step in range(12):
            real = x[(step * 32) % 320:(step * 32) % 320 + 32]
            fake = gen(torch.randn(32, 4))
            d_in = torch.cat([real, fake.detach()]) + 3.0 * torch.randn(64, 12)
            labels = torch.cat([torch.ones(32, 1), torch.zeros(32, 1)])
            opt_d.zero_grad()
            F.binary_cross_entropy_with_logits(disc(d_in), labels).backward()
            opt_d.step()
            opt_g.zero_grad()
            F.binary_cross_entropy_with_logits(disc(fake), torch.ones(32, 1)).backward()
            opt_g.step()
    hits = _hits(obs)
    assert hits and all(f.severity == Severity.INFO for f in hits), hits


def test_noise_on_a_learned_latent_stays_quiet():
    torch.manual_seed(0)
    x, y = _data()
    enc = nn.Linear(12, 4)
    dec = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 2))
    opt = torch.optim.Adam([*enc.parameters(), *dec.parameters()], lr=1e-3)
    with Observer(checks=[InputNoiseDrownsSignal]) as obs:
        for step in range(12):
            i = (step * 32) % 320
            z = enc(x[i:i + 32]) * 0.01
            out = dec(z + 3.0 * torch.randn_like(z))
            opt.zero_grad()
            F.cross_entropy(out, y[i:i + 32]).backward()
            opt.step()
    assert not _hits(obs)


class _PerExample(torch.utils.data.Dataset):
    """Noise added to each example in ``__getitem__`` (torch or a transform); batches collated by torch.stack."""

    def __init__(self, x, y, augment) -> None:
        self.x, self.y, self.augment = x, y, augment

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i):
        return self.augment(self.x[i]), self.y[i]


def _dataset_run(augment):
    torch.manual_seed(0)
    x, y = _data()
    model = Net()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    with Observer(checks=[InputNoiseDrownsSignal]) as obs:
        for xb, yb in DataLoader(_PerExample(x, y, augment), batch_size=32, shuffle=True):
            opt.zero_grad()
            F.cross_entropy(model(xb), yb).backward()
            opt.step()
    return _hits(obs)


@pytest.mark.parametrize("augment", [
    lambda xi: xi + 4.0 * torch.randn_like(xi),
    lambda xi: torch.randn(xi.shape) * 3.0 + xi,
])
def test_drowning_noise_added_per_example_in_a_dataset_is_caught(augment):
    hits = _dataset_run(augment)
    assert hits and hits[0].severity == Severity.WARNING and hits[0].evidence["noise_ratio"] >= 2, hits


@pytest.mark.parametrize("augment", [
    lambda xi: xi + 0.1 * torch.randn_like(xi),
    lambda xi: xi * (torch.rand(()) + 0.5),  # a random per-example scale, no additive noise
    lambda xi: xi,
])
def test_ordinary_per_example_augmentation_stays_quiet(augment):
    assert not _dataset_run(augment)
