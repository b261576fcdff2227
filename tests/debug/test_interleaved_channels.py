"""shape.channels-last-read-as-channels-first: channels-last images / signals reshaped (numpy at load time,
torch view in a Dataset's __getitem__, view on the batch in the loop, Conv1d signals) to channels-first,
named; permuted data, a sequence model's (N, T, F) input and structureless noise quiet."""

from __future__ import annotations

from typing import Callable

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset, TensorDataset

from nndoctor.debug.interleaved_channels import InterleavedChannels
from nndoctor.monitor import Observer, Schedule
from tests.helpers import assert_script_headline, run_script

CODE = "shape.channels-last-read-as-channels-first"
N = 96


def _smooth_images(n: int = N, size: int = 16, seed: int = 0) -> torch.Tensor:
    """(n, 3, size, size) smooth colour images: a shared blurred luminance plus blurred colour (channels-first)."""
    g = torch.Generator().manual_seed(seed)

    def field(k: int) -> torch.Tensor:
        z = torch.randn(n, 1, size + k - 1, size + k - 1, generator=g)
        return F.conv2d(z, torch.ones(1, 1, k, k) / k ** 2)

    colour = torch.cat([field(7) for _ in range(3)], 1)
    return field(5) + 0.4 * colour + torch.tensor([0.3, 0.0, -0.3]).view(1, 3, 1, 1)


IMAGES = _smooth_images()                                   # channels-first, the right layout
HWC = IMAGES.permute(0, 2, 3, 1).contiguous()               # as stored by numpy / PIL
LABELS = (IMAGES[:, 0].mean((1, 2)) > IMAGES[:, 2].mean((1, 2))).long()


def _cnn(channels: int = 3, dims: int = 2) -> nn.Module:
    torch.manual_seed(0)
    conv, pool = (nn.Conv2d, nn.AdaptiveAvgPool2d) if dims == 2 else (nn.Conv1d, nn.AdaptiveAvgPool1d)
    return nn.Sequential(conv(channels, 8, 3, padding=1), nn.ReLU(), pool(1), nn.Flatten(), nn.Linear(8, 2))


def _observe(model: nn.Module, batches: Callable[[], list]) -> list:
    opt = torch.optim.SGD(model.parameters(), lr=1e-2)
    with Observer(checks=[InterleavedChannels], schedule=Schedule(dense=4, every=2)) as obs:
        for x, y in batches():
            opt.zero_grad()
            F.cross_entropy(model(x), y).backward()
            opt.step()
    assert not obs.internal_errors, obs.internal_errors
    return [f for f in obs.findings if f.code == CODE]


def _numpy_reshape_at_load():
    x = torch.from_numpy(HWC.numpy().reshape(N, 3, 16, 16))
    return list(DataLoader(TensorDataset(x, LABELS), batch_size=16, shuffle=True))


class _HwcDataset(Dataset):
    def __len__(self) -> int:
        return N

    def __getitem__(self, i: int):
        return HWC[i].view(3, 16, 16), LABELS[i]            # one image viewed, not permuted


def _view_in_loop():
    return [(HWC[i:i + 16].view(-1, 3, 16, 16), LABELS[i:i + 16]) for i in range(0, N, 16)]


def _signals(right: bool):
    g = torch.Generator().manual_seed(1)
    t = torch.linspace(0, 6.28, 64)
    phase = torch.rand(N, 1, 4, generator=g) * 6.28
    sig = torch.sin(t.view(1, 64, 1) * torch.tensor([1.0, 2.0, 3.0, 0.5]) + phase)        # (N, L=64, C=4)
    x = sig.permute(0, 2, 1).contiguous() if right else sig.reshape(N, 4, 64)
    y = (phase[:, 0, 0] > 3.14).long()
    return [(x[i:i + 16], y[i:i + 16]) for i in range(0, N, 16)]


@pytest.mark.parametrize("batches", [_numpy_reshape_at_load,
                                     lambda: list(DataLoader(_HwcDataset(), batch_size=16, shuffle=True)),
                                     _view_in_loop],
                         ids=["numpy-reshape-at-load", "dataset-getitem-view", "view-in-loop"])
def test_hwc_images_reshaped_to_chw_are_named(batches):
    found = _observe(_cnn(), batches)
    assert len(found) == 1, found
    f = found[0]
    assert f.category == "shape" and f.evidence["channels"] == 3 and f.evidence["permute"] == "x.permute(0, 3, 1, 2)"


def test_conv1d_signals_reshaped_to_channels_first_are_named():
    found = _observe(_cnn(4, dims=1), lambda: _signals(right=False))
    assert len(found) == 1 and found[0].evidence["permute"] == "x.permute(0, 2, 1)"


@pytest.mark.parametrize("model,batches", [
    (lambda: _cnn(), lambda: [(IMAGES[i:i + 16], LABELS[i:i + 16]) for i in range(0, N, 16)]),
    (lambda: _cnn(), lambda: [(HWC[i:i + 16].permute(0, 3, 1, 2), LABELS[i:i + 16]) for i in range(0, N, 16)]),
    (lambda: _cnn(4, dims=1), lambda: _signals(right=True)),
    (lambda: _cnn(), lambda: [(torch.rand(16, 16, 16, 3).view(16, 3, 16, 16), LABELS[:16]) for _ in range(6)]),
], ids=["channels-first", "permuted-in-loop", "conv1d-transposed", "noise-without-structure"])
def test_right_layouts_and_structureless_noise_are_quiet(model, batches):
    assert _observe(model(), batches) == []


class _SeqModel(nn.Module):
    """(N, T, F) batch-first sequences into an LSTM: features interleaved in memory by design."""

    def __init__(self) -> None:
        super().__init__()
        self.rnn = nn.LSTM(3, 8, batch_first=True)
        self.head = nn.Linear(8, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.rnn(x)[0][:, -1])


def test_a_sequence_model_input_is_not_judged():
    seq = HWC.reshape(N, 256, 3)                               # smooth (N, T, F): period 3 in memory
    assert _observe(_SeqModel(), lambda: [(seq[i:i + 16], LABELS[i:i + 16]) for i in range(0, N, 16)]) == []


_SCRIPT = '''
import numpy as np, torch, torch.nn as nn
torch.manual_seed(0); rng = np.random.default_rng(0)
N = 600
imgs = rng.random((N, 16, 16, 3)).astype(np.float32) * 0.3
y = rng.integers(0, 3, N)
for i in range(N):                       # class = which colour channel has a bright square
    r, c = rng.integers(0, 10, 2); imgs[i, r:r + 6, c:c + 6, y[i]] = 1.0
X = torch.from_numpy(LAYOUT)
Y = torch.from_numpy(y)
model = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(16, 16, 3, padding=1),
                      nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 3))
opt = torch.optim.Adam(model.parameters(), lr=1e-3)
for epoch in range(2):
    perm = torch.randperm(N)
    for i in range(0, N, 50):
        b = perm[i:i + 50]
        opt.zero_grad(); nn.functional.cross_entropy(model(X[b]), Y[b]).backward(); opt.step()
'''


@pytest.mark.parametrize("layout,expected", [("imgs.reshape(N, 3, 16, 16)", True),
                                             ("np.ascontiguousarray(imgs.transpose(0, 3, 1, 2))", False)],
                         ids=["reshape", "transpose"])
def test_script_headline(tmp_path, layout, expected):
    result = run_script(tmp_path, _SCRIPT.replace("LAYOUT", layout))
    assert_script_headline(result, CODE, expected, "shape")


def test_lag_differences_of_interleaved_memory():
    from nndoctor.debug.interleaved_channels import lag_differences
    d = lag_differences(HWC.view(N, 3, 16, 16), 6)
    assert d[2] < 0.5 * d[:2].min() and d[5] < 0.5 * d[3:5].min()
    assert np.all(np.diff(lag_differences(IMAGES, 6).numpy()) > 0)     # smooth channels-first data: grows with k
