"""An evaluation forward with gradient enabled (``model.eval(); out = model(x)`` without no_grad,
as pygcn validates every epoch) between training steps is no change of training mode: the sampling
schedule keeps its rare sampled steps (it was boosted twice a step: 2.4x the plain run's time on
pygcn), while a model really left in eval mode for training is still looked at closely at once."""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F
from helpers import spy

from nndoctor.monitor import Observer
from nndoctor.monitor.observer.core import Observer as _Observer


def _sampled_steps(loop) -> list[int]:
    """The steps the heavy probes are switched on for."""
    with spy(_Observer, "_set_heavy", lambda self, on: self.state.step if on else None) as steps, Observer():
        loop()
    return steps


def _data():
    g = torch.Generator().manual_seed(0)
    y = torch.randint(0, 3, (256,), generator=g)
    return torch.randn(3, 8, generator=g)[y] + torch.randn(256, 8, generator=g), y


def _model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Dropout(0.2), nn.Linear(32, 3))


def _full_batch(eval_with_grad: bool, left_in_eval_at: int = -1):
    x, y = _data()
    model = _model()
    opt = torch.optim.Adam(model.parameters(), 1e-2)

    def loop() -> None:
        for epoch in range(150):
            if epoch < left_in_eval_at or left_in_eval_at < 0:
                model.train()
            opt.zero_grad()
            F.cross_entropy(model(x[:200]), y[:200]).backward()
            opt.step()
            if eval_with_grad:
                model.eval()
                out = model(x)  # (gradient enabled: the script computes its validation loss from it)
                F.cross_entropy(out[200:], y[200:]).item()

    return loop


def test_evaluation_forwards_with_gradient_do_not_keep_the_probes_on():
    plain = _sampled_steps(_full_batch(False))
    evaluated = _sampled_steps(_full_batch(True))
    assert len(plain) <= 16
    assert len(evaluated) <= len(plain) + 3, (plain, evaluated)  # (it was ~110 of 150 steps)


def test_a_model_left_in_eval_mode_for_training_is_still_looked_at_at_once():
    steps = _sampled_steps(_full_batch(True, left_in_eval_at=80))
    assert any(80 <= s <= 84 for s in steps), steps  # boosted where training goes on in eval mode
