"""The lr remedy of a script with no optimizer object: its hand-written update scaled through the
gradients, so the re-run trains like the script at the suggested rate."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from helpers import apply_remedy as _apply

from nndoctor.fix.hand_lr import HAND_WRITTEN, install_gradient_scale
from nndoctor.fix.remedies import remedy_for


def _data() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    y = torch.randint(0, 3, (256,), generator=g)
    return torch.randn(3, 8, generator=g)[y] * 1.5 + torch.randn(256, 8, generator=g), y


def _raw(lr: float, steps: int = 120) -> float:
    """Weight tensors updated by hand: ``w -= lr * w.grad``."""
    x, y = _data()
    torch.manual_seed(0)
    w1 = (torch.randn(8, 32) * 0.35).requires_grad_()
    w2 = (torch.randn(32, 3) * 0.18).requires_grad_()
    for i in range(steps):
        j = (i * 32) % 224
        loss = F.cross_entropy(torch.relu(x[j:j + 32] @ w1) @ w2, y[j:j + 32])
        loss.backward()
        with torch.no_grad():
            for p in (w1, w2):
                p -= lr * p.grad
                p.grad = None
    with torch.no_grad():
        return float(F.cross_entropy(torch.relu(x @ w1) @ w2, y))


def _module(lr: float, steps: int = 120) -> float:
    """A module's parameters, ``p.data.add_(p.grad, alpha=-lr)`` after model.zero_grad()/backward."""
    x, y = _data()
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Linear(32, 3))
    for i in range(steps):
        j = (i * 32) % 224
        model.zero_grad()
        F.cross_entropy(model(x[j:j + 32]), y[j:j + 32]).backward()
        for p in model.parameters():
            p.data.add_(p.grad, alpha=-lr)
    with torch.no_grad():
        return float(F.cross_entropy(model(x), y))


def _finding(lr: float, ratio: float) -> dict:
    return {"code": "lr.too-high", "location": HAND_WRITTEN,
            "evidence": {"optimizer": HAND_WRITTEN, "lr": f"{lr:g}", "update_ratio_median": ratio}}


@pytest.mark.parametrize("loop", [_raw, _module], ids=["raw-tensors", "module-data-add"])
def test_a_too_high_hand_written_rate_is_scaled_down_and_trains_like_the_twin(loop):
    bug, twin = loop(30.0), loop(0.3)
    assert not bug <= 2 * twin  # (the bug: a rate 100x too high; NaN counts)
    f = _finding(30.0, 0.3)
    remedy = remedy_for(f)
    assert remedy is not None and remedy.name == "learning-rate"
    # the suggested rate: 30 * 1e-3 (healthy ratio) / 0.3 (measured) = 0.1: the gradients scaled by 1/300
    assert "hand-written" in remedy.edit(f) and "0.00333" in remedy.edit(f)
    with _apply("lr.too-high", HAND_WRITTEN, optimizer=HAND_WRITTEN, lr="30", update_ratio_median=0.3):
        fixed = loop(30.0)
    assert fixed < 1.5 * twin + 0.05  # (the bug ends at NaN or far above)
    again = loop(30.0)  # the remedy is gone with its stack
    assert again == bug or (again != again and bug != bug)


def test_the_gradient_scale_leaves_optimizer_runs_alone():
    def run() -> list[torch.Tensor]:
        torch.manual_seed(0)
        model = nn.Linear(4, 2)
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        for _ in range(5):
            opt.zero_grad()
            model(torch.randn(8, 4)).pow(2).mean().backward()
            opt.step()
        return [p.detach().clone() for p in model.parameters()]

    plain = run()
    import contextlib

    with contextlib.ExitStack() as stack:
        install_gradient_scale(0.01, stack)
        scaled = run()
    assert all(torch.equal(a, b) for a, b in zip(plain, scaled))
    with pytest.raises(ValueError, match="positive"):
        install_gradient_scale(0.0, contextlib.ExitStack())
