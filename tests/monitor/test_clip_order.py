"""optimizer.clip-has-no-effect: clip_grad_norm_ / clip_grad_value_ called before backward() or
after step() (no applied gradient is ever clipped), in several styles; a clip between backward and
step (also with gradient accumulation and beside a norm read for logging after the step), a manual
update without an optimizer, and a misplaced clip that was never needed (info) stay quiet.

(The clipping functions are called through ``nn.utils``: a name imported before the observer starts
is the unwatched original; a script run by ``nndoctor run`` imports the watched one.)"""

from __future__ import annotations

from typing import Callable

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from nndoctor.findings import Severity
from nndoctor.monitor import Observer
from nndoctor.monitor.checks.clip_order import ClipHasNoEffect
from nndoctor.monitor.checks.clipping import ClipTooTight

CODE = "optimizer.clip-has-no-effect"
_G = torch.Generator().manual_seed(0)
X = torch.randn(640, 12, generator=_G)
Y = (X[:, :3].sum(1) > 0).long() + (X[:, 3] > 1).long()


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(12, 64), nn.Linear(64, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(torch.relu(self.fc1(x)))


def _observe(run: Callable[[], None]) -> list:
    torch.manual_seed(0)
    with Observer(checks=[ClipHasNoEffect, ClipTooTight]) as obs:
        run()
    assert not obs.internal_errors, obs.internal_errors
    return [f for f in obs.findings if f.code == CODE]


def _loop(step: Callable[[nn.Module, torch.optim.Optimizer, torch.Tensor, torch.Tensor], None],
          model: nn.Module | None = None, epochs: int = 3) -> None:
    model = model or Net()
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    for _ in range(epochs):
        for i in range(0, len(X), 32):
            step(model, opt, X[i:i + 32], Y[i:i + 32])


# -- faults ----------------------------------------------------------------------------------------
def _before_backward(model, opt, xb, yb) -> None:
    opt.zero_grad()
    nn.utils.clip_grad_norm_(model.parameters(), max_norm=0.1)
    F.cross_entropy(model(xb), yb).backward()
    opt.step()


def _before_backward_zeros(model, opt, xb, yb) -> None:
    opt.zero_grad(set_to_none=False)
    loss = F.cross_entropy(model(xb), yb)
    torch.nn.utils.clip_grad_norm_(model.parameters(), 0.1)
    loss.backward()
    opt.step()


def _after_step(model, opt, xb, yb) -> None:
    opt.zero_grad()
    F.cross_entropy(model(xb), yb).backward()
    opt.step()
    nn.utils.clip_grad_norm_(model.parameters(), 0.1)


def _value_after_step(model, opt, xb, yb) -> None:
    opt.zero_grad()
    F.cross_entropy(model(xb), yb).backward()
    opt.step()
    nn.utils.clip_grad_value_(model.parameters(), clip_value=0.01)


@pytest.mark.parametrize("step", [_before_backward, _before_backward_zeros, _after_step, _value_after_step])
def test_a_clip_outside_backward_and_step_is_a_warning(step) -> None:
    found = _observe(lambda: _loop(step))
    assert len(found) == 1, found
    f = found[0]
    assert f.severity is Severity.WARNING
    assert f.evidence["largest_applied"] > f.evidence["threshold"]
    assert "test_clip_order.py" in f.location


def test_a_sequential_model_clipped_after_step_in_a_function() -> None:
    def train(model: nn.Module, opt: torch.optim.Optimizer) -> None:
        crit = nn.CrossEntropyLoss()
        for i in range(0, len(X), 16):
            opt.zero_grad()
            crit(model(X[i:i + 16]), Y[i:i + 16]).backward()
            opt.step()
            nn.utils.clip_grad_norm_(model.parameters(), 0.05)

    model = nn.Sequential(nn.Linear(12, 32), nn.Tanh(), nn.Linear(32, 3))
    found = _observe(lambda: train(model, torch.optim.Adam(model.parameters(), 1e-2)))
    assert [f.severity for f in found] == [Severity.WARNING]


# -- healthy lookalikes ----------------------------------------------------------------------------
def _correct(model, opt, xb, yb) -> None:
    opt.zero_grad()
    F.cross_entropy(model(xb), yb).backward()
    nn.utils.clip_grad_norm_(model.parameters(), 0.1)
    opt.step()


def _correct_then_logged(model, opt, xb, yb) -> None:
    _correct(model, opt, xb, yb)
    nn.utils.clip_grad_norm_(model.parameters(), float("inf"))  # the norm read for logging after the step


def test_clip_between_backward_and_step_is_quiet() -> None:
    assert _observe(lambda: _loop(_correct)) == []
    assert _observe(lambda: _loop(_correct_then_logged)) == []


def test_accumulation_clipped_before_the_step_is_quiet() -> None:
    def run() -> None:
        model = Net()
        opt = torch.optim.SGD(model.parameters(), lr=0.5)
        opt.zero_grad()
        for k, i in enumerate(range(0, len(X), 16)):
            (F.cross_entropy(model(X[i:i + 16]), Y[i:i + 16]) / 4).backward()
            if k % 4 == 3:
                nn.utils.clip_grad_norm_(model.parameters(), 0.1)
                opt.step()
                opt.zero_grad()

    assert _observe(run) == []


def test_manual_update_without_optimizer_is_quiet() -> None:
    """word_language_model style: clip, then p.data.add_(p.grad, alpha=-lr); no optimizer to order against."""
    def run() -> None:
        model = Net()
        for _ in range(3):
            for i in range(0, len(X), 32):
                model.zero_grad()
                F.cross_entropy(model(X[i:i + 32]), Y[i:i + 32]).backward()
                nn.utils.clip_grad_norm_(model.parameters(), 0.25)
                with torch.no_grad():
                    for p in model.parameters():
                        p.add_(p.grad, alpha=-0.5)

    assert _observe(run) == []


def test_a_misplaced_clip_that_never_acts_is_info() -> None:
    found = _observe(lambda: _loop(lambda m, o, xb, yb: (o.zero_grad(), nn.utils.clip_grad_norm_(m.parameters(), 1e3),
                                                        F.cross_entropy(m(xb), yb).backward(), o.step())))
    assert [f.severity for f in found] == [Severity.INFO]
