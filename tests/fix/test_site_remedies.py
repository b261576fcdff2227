"""The remedies of nndoctor.fix.site_remedies: a view that scrambles axes, uint8 arithmetic that
wraps, class ids scaled like pixels, a penalty that outweighs the data loss. Each injected bug
trains like its fixed twin with the remedy applied; healthy code (and the same operation at
another line) is untouched."""

from __future__ import annotations

import os

import torch
import torch.nn as nn
import torch.nn.functional as F
from helpers import apply_remedy as _apply

from nndoctor.fix.site_remedies import axes_permutation, penalty_scale

_FILE = os.path.basename(__file__)


def _site(fn) -> str:
    """``file:line`` of the statement on the line after ``fn``'s ``def``."""
    return f"{_FILE}:{fn.__code__.co_firstlineno + 1}"


# -- view -> permute ----------------------------------------------------------------------
def _scramble(out: torch.Tensor) -> torch.Tensor:
    return out.view(out.shape[0], out.shape[2], out.shape[1])  # the bug: (B, T, K) read as (B, K, T)


def _legit(out: torch.Tensor) -> torch.Tensor:
    return out.reshape(out.shape[0], out.shape[2], out.shape[1])  # same sizes, another line: left alone


def _tagger(to_ce) -> list[float]:
    torch.manual_seed(0)
    x, y = torch.randn(8, 5, 4), torch.randint(0, 3, (8, 5))
    x = x + F.one_hot(y, 4).float()
    model = nn.Sequential(nn.Linear(4, 16), nn.Tanh(), nn.Linear(16, 3))
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    losses = []
    for _ in range(30):
        loss = F.cross_entropy(to_ce(model(x)), y)   # (B, K, T) logits, (B, T) targets
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses


def test_axes_permutation_is_unique_or_none():
    assert axes_permutation((8, 5, 3), (8, 3, 5)) == (0, 2, 1)
    assert axes_permutation((1, 5, 3), (3, 1, 5)) == (2, 0, 1)
    assert axes_permutation((4, 4, 3), (4, 3, 4)) is None     # two axes of the same size: ambiguous
    assert axes_permutation((8, 5, 3), (8, 5, 3)) is None and axes_permutation((8, 15), (8, 3, 5)) is None


def test_view_that_scrambles_axes_becomes_a_permute_like_the_twin():
    twin = _tagger(lambda z: z.permute(0, 2, 1))
    bug = _tagger(_scramble)
    with _apply("shape.view-scrambles-axes", _site(_scramble), op="view", before=(8, 5, 3), after=(8, 3, 5),
                site=_site(_scramble)):
        fixed = _tagger(_scramble)
        healthy = _tagger(lambda z: z.permute(0, 2, 1))
        other_line = _legit(torch.arange(24.0).reshape(2, 3, 4))
    assert torch.allclose(torch.tensor(fixed), torch.tensor(twin)) and healthy == twin
    assert bug[-1] > twin[-1] + 0.05
    assert torch.equal(other_line, torch.arange(24.0).reshape(2, 4, 3))


# -- uint8 wraparound ---------------------------------------------------------------------
def _centre_bug(img: torch.Tensor) -> torch.Tensor:
    return (img - 128).float() / 128  # the bug: uint8 - 128 wraps


def _images() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    y = torch.arange(64) % 2
    img = (torch.rand(64, 12, generator=g) * 120 + 70 * y[:, None]).to(torch.uint8)
    return img, y


def _fit_images(prep) -> list[float]:
    torch.manual_seed(0)
    img, y = _images()
    model = nn.Sequential(nn.Linear(12, 8), nn.ReLU(), nn.Linear(8, 2))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(30):
        loss = F.cross_entropy(model(prep(img)), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses


def test_uint8_wraparound_is_computed_in_float_like_the_twin():
    twin = _fit_images(lambda im: (im.float() - 128) / 128)
    bug = _fit_images(_centre_bug)
    with _apply("dtype.uint8-wraparound", _site(_centre_bug), op="sub", symbol="-", site=_site(_centre_bug)):
        fixed = _fit_images(_centre_bug)
        healthy = _fit_images(lambda im: (im.float() - 128) / 128)
        inverted = 255 - _images()[0]              # uint8 arithmetic at another line: still uint8
    assert fixed == twin and healthy == twin and bug[-1] > twin[-1]
    assert inverted.dtype == torch.uint8


# -- labels scaled like pixels --------------------------------------------------------------
def _fit_binary(y: torch.Tensor) -> list[float]:
    """The losses, then the accuracy on the true classes."""
    torch.manual_seed(0)
    x = torch.randn(64, 6) + 1.5 * (torch.arange(64) % 2)[:, None]
    model = nn.Linear(6, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    losses = []
    for _ in range(30):
        loss = nn.BCEWithLogitsLoss()(model(x).squeeze(1), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return [*losses, float(((model(x).squeeze(1) > 0).long() == torch.arange(64) % 2).float().mean())]


def test_labels_scaled_like_pixels_get_their_class_ids_back_like_the_twin():
    y = (torch.arange(64) % 2).float()
    twin, bug = _fit_binary(y), _fit_binary(y / 255)
    soft = torch.linspace(0.1, 0.9, 64)
    healthy_soft = _fit_binary(soft)
    with _apply("preprocessing.labels-scaled-like-pixels", "x.py:3", loss="F.binary_cross_entropy_with_logits",
                site="x.py:3"):
        fixed = _fit_binary(y / 255)
        healthy = _fit_binary(y)
        soft_after = _fit_binary(soft)
    assert fixed == twin and healthy == twin and soft_after == healthy_soft
    assert twin[-1] > 0.8 and bug[-1] <= 0.5


# -- a penalty that outweighs the data loss ---------------------------------------------------
def _fit_penalised(lam: float, style: str = "sum") -> torch.Tensor:
    torch.manual_seed(0)
    x = torch.randn(64, 6)
    y = (x[:, 0] > 0).long()
    model = nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 2))
    opt = torch.optim.SGD(model.parameters(), lr=0.2)
    for _ in range(30):
        ce = F.cross_entropy(model(x), y)
        if style == "sum":
            loss = ce + lam * sum(p.pow(2).sum() for p in model.parameters())
        elif style == "norm":
            loss = nn.CrossEntropyLoss()(model(x), y) + lam * torch.norm(model[0].weight)
        else:
            loss = ce + F.cross_entropy(model(x) * 2, y)   # two data losses, no penalty
        opt.zero_grad()
        loss.backward()
        opt.step()
    return torch.cat([p.detach().flatten() for p in model.parameters()])


def test_penalty_too_strong_is_scaled_down_like_the_twin():
    finding = {"kind": "L2", "ratio": 20.0, "factor": "200"}
    scale = penalty_scale({"evidence": finding})
    assert scale == 0.01 / 20
    twin, bug = _fit_penalised(1.0 * scale), _fit_penalised(1.0)
    with _apply("regularization.loss-penalty-too-strong", "0.weight", **finding):
        fixed = _fit_penalised(1.0)
        norm = _fit_penalised(1.0, "norm")
        healthy = _fit_penalised(0.0, "two")
    assert torch.allclose(fixed, twin, atol=1e-5) and not torch.allclose(bug, twin, atol=1e-2)
    assert torch.allclose(norm, _fit_penalised(scale, "norm"), atol=1e-5)
    assert torch.equal(healthy, _fit_penalised(0.0, "two"))
