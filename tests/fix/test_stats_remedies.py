"""The unswap-mean-std remedy of preprocessing.mean-std-swapped: images normalised as
``(x - std) / mean`` reach the model as ``(x - mean) / std``, exactly the fixed twin's inputs, in
three layouts (NCHW with ImageNet's statistics, NHWC with CIFAR-10's, flattened single-channel
digits with MNIST's); correctly normalised inputs (an evaluation loop that normalises right, a
healthy script) are untouched: bit-identical."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from helpers import finding_of, remedied
from sklearn.datasets import load_digits

from nndoctor.debug.mean_std_swap import KNOWN, MeanStdSwapped
from nndoctor.fix.stats_remedies import unswap


def _images(layout: str) -> tuple[torch.Tensor, torch.Tensor, str]:
    """Pixels in [0, 1] with black and white in every image, labels, the statistics' name."""
    if layout == "flat":
        x, y = load_digits(return_X_y=True)
        return torch.tensor(x / 16.0, dtype=torch.float32)[:1200], torch.tensor(y)[:1200], "MNIST"
    g = torch.Generator().manual_seed(0)
    y = torch.randint(0, 2, (600,), generator=g)
    x = torch.rand(600, 3, 8, 8, generator=g) * 0.6 + 0.2
    x[y == 1, :, :4] += 0.15                              # the class: a brighter top half
    x[:, :, 0, 0], x[:, :, -1, -1] = 0.0, 1.0              # a black and a white pixel in every channel
    x = x.clamp(0, 1)
    return (x, y, "ImageNet") if layout == "nchw" else (x.permute(0, 2, 3, 1).contiguous(), y, "CIFAR-10")


def _model(layout: str) -> nn.Module:
    if layout == "flat":
        return nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10))
    first = [] if layout == "nchw" else [_Permute()]
    return nn.Sequential(*first, nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 64, 2))


class _Permute(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.permute(0, 3, 1, 2)


def _normalise(x: torch.Tensor, layout: str, name: str, swapped: bool) -> torch.Tensor:
    mean, std = (torch.tensor(v) for v in KNOWN[name])
    if swapped:
        mean, std = std, mean
    shape = (1, -1, 1, 1) if layout == "nchw" else (-1,) if layout == "nhwc" else ()
    return (x - mean.view(shape)) / std.view(shape)


def _train(layout: str, swapped: bool, eval_right: bool = False, seen: list | None = None) -> float:
    """Adam for 3 epochs on the normalised images; accuracy on the last 200 (normalised the way the
    training inputs are, or the right way when ``eval_right``)."""
    x, y, name = _images(layout)
    torch.manual_seed(0)
    model = _model(layout)
    if seen is not None:
        model.register_forward_pre_hook(lambda m, args: seen.append(args[0].detach().clone()))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    xt = _normalise(x, layout, name, swapped)
    for _ in range(3):
        for i in range(0, len(x) - 200, 50):
            opt.zero_grad()
            F.cross_entropy(model(xt[i:i + 50]), y[i:i + 50]).backward()
            opt.step()
    xe = _normalise(x, layout, name, swapped and not eval_right)
    with torch.no_grad():
        return float((model(xe[-200:]).argmax(1) == y[-200:]).float().mean())


LAYOUTS = ["nchw", "nhwc", "flat"]


@pytest.mark.parametrize("layout", LAYOUTS)
def test_swapped_statistics_are_mapped_onto_the_twins_inputs(layout: str) -> None:
    finding = finding_of(lambda: _train(layout, swapped=True), [MeanStdSwapped], "preprocessing.mean-std-swapped")
    twin_inputs: list[torch.Tensor] = []
    fixed_inputs: list[torch.Tensor] = []
    twin = _train(layout, swapped=False, seen=twin_inputs)
    with remedied(finding):
        fixed = _train(layout, swapped=True, seen=fixed_inputs)
    assert len(fixed_inputs) == len(twin_inputs)
    assert all(torch.allclose(a, b, atol=1e-5) for a, b in zip(fixed_inputs, twin_inputs))
    assert abs(fixed - twin) <= 0.02, (fixed, twin)
    with remedied(finding):  # an evaluation that normalises the right way is left so, and agrees with training
        mixed = _train(layout, swapped=True, eval_right=True)
    assert abs(mixed - twin) <= 0.02, (mixed, twin)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_inputs_normalised_the_right_way_are_untouched(layout: str) -> None:
    name = _images(layout)[2]
    finding = {"code": "preprocessing.mean-std-swapped", "location": "model",
               "evidence": {"mean": list(KNOWN[name][0]), "std": list(KNOWN[name][1])}}
    plain = _train(layout, swapped=False)
    with remedied(finding):
        again = _train(layout, swapped=False)
    assert again == plain


def test_only_batches_with_the_swaps_mark_are_mapped() -> None:
    mean, std = list(KNOWN["ImageNet"][0]), list(KNOWN["ImageNet"][1])
    x, _, _ = _images("nchw")
    right = _normalise(x[:8], "nchw", "ImageNet", swapped=False)
    swapped = _normalise(x[:8], "nchw", "ImageNet", swapped=True)
    assert unswap(right, mean, std) is right                         # evaluation normalised the right way
    assert torch.allclose(unswap(swapped, mean, std), right, atol=1e-5)
    assert unswap(x[:8] * 255, mean, std) is not None                # another scale: left alone
    assert torch.equal(unswap(x[:8] * 255, mean, std), x[:8] * 255)


