"""preprocessing.mean-std-swapped: images normalised as (x - std) / mean with published statistics.

Injected in several styles (a tensor normalised up front for an nn.Sequential CNN, a Dataset whose
__getitem__ normalises for a Module subclass behind a DataLoader, channels-last batches, flattened MNIST
for an MLP; SGD and Adam; main() and a plain loop); the correct order, raw [0, 1] pixels, the
symmetric 0.5 / 0.5 statistics and per-image standardisation stay quiet.
"""

from __future__ import annotations

from typing import Callable

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset

from nndoctor.debug.mean_std_swap import KNOWN, MeanStdSwapped, swapped_stats
from nndoctor.monitor import Observer

CODE = "preprocessing.mean-std-swapped"
_G = torch.Generator().manual_seed(0)
RGB = (torch.rand(256, 3, 12, 12, generator=_G) * 255).round().to(torch.uint8)
GRAY = (torch.rand(256, 1, 12, 12, generator=_G) * 255).round().to(torch.uint8)
LABELS = (RGB.float()[:, 0].mean((1, 2)) > RGB.float()[:, 2].mean((1, 2))).long()


def _findings(fn: Callable[[], None]) -> list:
    torch.manual_seed(0)
    with Observer(checks=[MeanStdSwapped]) as obs:
        fn()
    assert not obs.internal_errors, obs.internal_errors
    return [f for f in obs.findings if f.code == CODE]


def normalise(imgs: torch.Tensor, stats: str, swapped: bool) -> torch.Tensor:
    mean, std = (torch.tensor(v).view(1, -1, 1, 1) for v in KNOWN[stats])
    a, b = (std, mean) if swapped else (mean, std)
    return (imgs.float() / 255.0 - a) / b


class SmallCNN(nn.Module):
    def __init__(self, channels: int = 3, channels_last: bool = False) -> None:
        super().__init__()
        self.channels_last = channels_last
        self.conv = nn.Conv2d(channels, 8, 3, padding=1)
        self.fc = nn.Linear(8, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.channels_last:
            x = x.permute(0, 3, 1, 2)
        return self.fc(F.relu(self.conv(x)).mean((2, 3)))


class Images(Dataset):
    def __init__(self, stats: str, swapped: bool) -> None:
        self.stats, self.swapped = stats, swapped

    def __len__(self) -> int:
        return len(RGB)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return normalise(RGB[i:i + 1], self.stats, self.swapped)[0], LABELS[i]


def _loop(model: nn.Module, x: torch.Tensor, y: torch.Tensor, sgd: bool = False, steps: int = 8) -> None:
    opt = torch.optim.SGD(model.parameters(), lr=0.05) if sgd else torch.optim.Adam(model.parameters(), 1e-3)
    for s in range(steps):
        i = (s * 32) % len(x)
        loss = F.cross_entropy(model(x[i:i + 32]), y[i:i + 32])
        opt.zero_grad()
        loss.backward()
        opt.step()


def sequential_tensor(stats: str = "ImageNet", swapped: bool = True) -> None:
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                          nn.Linear(8, 2))
    _loop(model, normalise(RGB, stats, swapped), LABELS, sgd=True)


def module_dataloader(stats: str = "CIFAR-10", swapped: bool = True) -> None:
    def main() -> None:
        model = SmallCNN()
        opt = torch.optim.Adam(model.parameters(), 1e-3)
        crit = nn.CrossEntropyLoss()
        for step, (xb, yb) in enumerate(DataLoader(Images(stats, swapped), batch_size=32, shuffle=True)):
            loss = crit(model(xb), yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
            if step == 6:
                break
    main()


def channels_last(stats: str = "CIFAR-100", swapped: bool = True) -> None:
    _loop(SmallCNN(channels_last=True), normalise(RGB, stats, swapped).permute(0, 2, 3, 1).contiguous(), LABELS)


def flat_mnist(stats: str = "MNIST", swapped: bool = True) -> None:
    x = normalise(GRAY, stats, swapped).flatten(1)
    model = nn.Sequential(nn.Linear(144, 32), nn.ReLU(), nn.Linear(32, 2))
    _loop(model, x, LABELS, sgd=True)


STYLES = [sequential_tensor, module_dataloader, channels_last, flat_mnist]


@pytest.mark.parametrize("style", STYLES, ids=[s.__name__ for s in STYLES])
def test_swapped_statistics_are_caught(style: Callable[..., None]) -> None:
    found = _findings(lambda: style(swapped=True))
    assert len(found) == 1
    assert found[0].evidence["batches"] >= 2


@pytest.mark.parametrize("style", STYLES, ids=[s.__name__ for s in STYLES])
def test_correct_order_is_quiet(style: Callable[..., None]) -> None:
    assert _findings(lambda: style(swapped=False)) == []


def test_fashion_mnist_swapped_is_caught() -> None:
    assert len(_findings(lambda: flat_mnist("Fashion-MNIST", True))) == 1


@pytest.mark.parametrize("prepare", [
    lambda imgs: imgs.float() / 255.0,                                          # raw [0, 1] pixels
    lambda imgs: (imgs.float() / 255.0 - 0.5) / 0.5,                            # symmetric statistics
    lambda imgs: (imgs.float() - imgs.float().mean((1, 2, 3), keepdim=True))    # per-image standardisation
    / imgs.float().std((1, 2, 3), keepdim=True),
    lambda imgs: (imgs.float() / 255.0 - 0.229) / 0.485,                        # one constant for all channels
], ids=["raw", "half", "per-image", "scalar"])
def test_other_normalisations_are_quiet(prepare: Callable[[torch.Tensor], torch.Tensor]) -> None:
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                          nn.Linear(8, 2))
    assert _findings(lambda: _loop(model, prepare(RGB), LABELS)) == []


def test_swapped_stats_needs_both_ends_in_every_channel() -> None:
    m, s = KNOWN["ImageNet"]
    lo = [-sc / mc for mc, sc in zip(m, s)]
    hi = [(1 - sc) / mc for mc, sc in zip(m, s)]
    assert swapped_stats(lo, hi) == "ImageNet"
    assert swapped_stats(lo, [h - 0.2 for h in hi]) is None  # no white pixel: not judged
    assert swapped_stats([-mc / sc for mc, sc in zip(m, s)], [(1 - mc) / sc for mc, sc in zip(m, s)]) is None


class _TimeConditioned(nn.Module):
    """``forward(t, x)`` with a 0-dim time first (an ODE function, torchdiffeq's ``func(t, y)``)."""

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(145, 32), nn.Tanh(), nn.Linear(32, 2))

    def forward(self, t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([x, t.expand(len(x), 1)], 1))


@pytest.mark.parametrize("swapped", [True, False])
def test_a_scalar_first_argument_is_skipped_and_the_batch_after_it_judged(swapped: bool) -> None:
    x = normalise(GRAY, "MNIST", swapped).flatten(1)

    def run() -> None:
        model = _TimeConditioned()
        opt = torch.optim.Adam(model.parameters(), 1e-3)
        for s in range(8):
            i = (s * 32) % len(x)
            loss = F.cross_entropy(model(torch.tensor(0.5), x[i:i + 32]), LABELS[i:i + 32])
            opt.zero_grad()
            loss.backward()
            opt.step()

    assert bool(_findings(run)) is swapped  # (the old code failed on the 0-dim time: an internal error)
