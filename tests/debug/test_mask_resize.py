"""labels.mask-interpolated: segmentation masks resized with bilinear/bicubic/area interpolation.

Injected in four styles (the whole set resized before training and served by a DataLoader, per batch
with bicubic + round, per sample inside a Dataset with area, a float binary mask into BCE: info);
nearest resizing, images resized bilinearly, logits upsampled to the mask size and soft targets stay
quiet.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset, TensorDataset

from nndoctor.debug.mask_resize import MaskInterpolated, smoothing_mode
from nndoctor.monitor import Observer

CODE = "labels.mask-interpolated"
N, S, C = 32, 32, 4


def _masks(classes: int = C) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    yy, xx = torch.meshgrid(torch.arange(S), torch.arange(S), indexing="ij")
    masks = torch.zeros(N, S, S, dtype=torch.long)
    for i in range(N):
        for c in range(1, classes):
            cy, cx, r = torch.randint(4, S - 4, (2,), generator=g).tolist() + [int(torch.randint(3, 8, (1,),
                                                                                                 generator=g))]
            masks[i][(yy - cy) ** 2 + (xx - cx) ** 2 < r * r] = c
    images = masks[:, None].float() / classes + 0.1 * torch.randn(N, 1, S, S, generator=g)
    return images, masks


def _fit(get_batch, head_size: int = 16, loss: str = "ce", steps: int = 4) -> list:
    torch.manual_seed(0)
    model = nn.Conv2d(1, C if loss == "ce" else 1, 3, padding=1)
    opt = torch.optim.SGD(model.parameters(), 0.1)
    with Observer(checks=[MaskInterpolated]) as obs:
        batches = get_batch()
        for _ in range(steps):
            x, y = next(batches)
            if x.shape[-1] != head_size:
                x = F.interpolate(x, size=(head_size, head_size), mode="bilinear", align_corners=False)
            out = model(x)
            if loss == "ce":
                value = F.cross_entropy(out, y)
            else:
                value = F.binary_cross_entropy_with_logits(out[:, 0], y)
            opt.zero_grad()
            value.backward()
            opt.step()
    assert not obs.internal_errors, obs.internal_errors
    return [f for f in obs.findings if f.code == CODE]


def upfront(mode: str = "bilinear"):
    images, masks = _masks()
    small = F.interpolate(masks[:, None].float(), size=(16, 16), mode=mode).squeeze(1).long()
    loader = DataLoader(TensorDataset(F.interpolate(images, size=(16, 16), mode="bilinear"), small), batch_size=8)
    while True:
        yield from loader


def per_batch(mode: str = "bicubic"):
    images, masks = _masks()
    while True:
        for i in range(0, N, 8):
            y = F.interpolate(masks[i:i + 8, None].float(), scale_factor=0.5, mode=mode)
            yield images[i:i + 8], y.round().clamp(0, C - 1).long()[:, 0]  # (bicubic overshoots)


class Pairs(Dataset):
    def __init__(self, mode: str) -> None:
        self.images, self.masks = _masks()
        self.mode = mode

    def __len__(self) -> int:
        return N

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        m = F.interpolate(self.masks[i][None, None].to(torch.float32), size=(16, 16), mode=self.mode)
        return self.images[i], m[0, 0].to(torch.long)


def in_dataset(mode: str = "area"):
    while True:
        yield from DataLoader(Pairs(mode), batch_size=8)


def binary_float(mode: str = "bilinear"):
    images, masks = _masks(classes=2)
    y = F.interpolate(masks[:, None].float(), size=(16, 16), mode=mode)[:, 0]
    while True:
        for i in range(0, N, 8):
            yield images[i:i + 8], y[i:i + 8]


@pytest.mark.parametrize("source", [upfront, per_batch, in_dataset])
def test_interpolated_masks_are_named(source) -> None:
    found = _fit(source)
    assert len(found) == 1, source.__name__
    f = found[0]
    assert f.severity.value == "warning"
    assert f.evidence["mode"] in ("bilinear", "bicubic", "area") and f.evidence["non_integer"] > 0.01
    assert "mode='nearest'" in f.message


def test_float_binary_mask_into_bce_is_info() -> None:
    found = _fit(binary_float, loss="bce")
    assert len(found) == 1 and found[0].severity.value == "info"


@pytest.mark.parametrize("source", [upfront, per_batch, in_dataset])
def test_nearest_resize_is_quiet(source) -> None:
    assert _fit(lambda: source("nearest")) == []


def test_logits_upsampled_to_the_mask_are_quiet() -> None:
    images, masks = _masks()
    torch.manual_seed(0)
    model = nn.Conv2d(1, C, 3, stride=2, padding=1)
    opt = torch.optim.SGD(model.parameters(), 0.1)
    with Observer(checks=[MaskInterpolated]) as obs:
        for i in range(0, N, 8):
            out = F.interpolate(model(images[i:i + 8]), size=(S, S), mode="bilinear", align_corners=False)
            loss = F.cross_entropy(out, masks[i:i + 8])
            opt.zero_grad()
            loss.backward()
            opt.step()
    assert [f for f in obs.findings if f.code == CODE] == []


def test_soft_targets_and_images_are_quiet() -> None:
    images, masks = _masks()
    soft = F.one_hot(masks, C).permute(0, 3, 1, 2).float() * 0.9 + 0.1 / C  # not integers: soft labels
    pixels = (images * 100).round().clamp(0, 255)  # integer-valued image: many values, a model input

    def batches():
        while True:
            for i in range(0, N, 8):
                x = F.interpolate(pixels[i:i + 8], size=(16, 16), mode="bilinear") / 255
                yield x, F.interpolate(soft[i:i + 8], size=(16, 16), mode="bilinear")

    assert _fit(batches) == []


def test_smoothing_mode() -> None:
    assert smoothing_mode((None, (8, 8), None, "bilinear"), {}) == "bilinear"  # (input, size, scale, mode)
    assert smoothing_mode((None,), {"mode": "nearest-exact"}) is None
    assert smoothing_mode((None,), {}) is None


def test_a_large_set_is_judged_on_a_sample() -> None:
    from nndoctor.debug.mask_resize import SAMPLE, class_map
    masks = (torch.arange(4 * SAMPLE) % 7).float().reshape(-1, 1, 64, 64)
    assert class_map(masks) == 7
    assert class_map(masks + 0.5) is None
    assert class_map(torch.rand(3, 1, 64, 64) * 255) is None  # an image: many values, not integers


def test_positional_mode_is_read() -> None:
    images, masks = _masks()

    def positional():
        while True:
            for i in range(0, N, 8):
                yield images[i:i + 8], F.interpolate(masks[i:i + 8, None].float(), None, 0.5, "bilinear").long()[:, 0]

    assert len(_fit(positional)) == 1
