"""A long data preparation in torch calls before any model runs (TCN's adding problem makes its
50,000 sequences one by one: 306,000 torch calls) is not followed op by op: after PREP_OPS watched
calls the function mode steps aside until a module's forward or a backward, and what training does
is seen from its first step as before (it cost the whole run 1.41x)."""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F
from helpers import spy

from nndoctor.monitor import Observer
from nndoctor.monitor.functions import PREP_OPS
from nndoctor.monitor.observer.core import Observer as _Observer


def _prepare(n: int) -> tuple[torch.Tensor, torch.Tensor]:
    xs, ys = [], []
    g = torch.Generator().manual_seed(0)
    for _ in range(n):  # one example at a time, several torch calls each
        x = torch.rand(8, generator=g)
        x = x * 2 - 1
        ys.append(torch.tensor(int(x[:4].sum() > 0)))
        xs.append(x)
    return torch.stack(xs), torch.stack(ys)


def _watched(run) -> tuple[int, Observer]:
    with spy(_Observer, "_on_op") as calls, Observer() as obs:
        run()
    return len(calls), obs


def test_a_long_preparation_is_followed_only_up_to_its_budget_and_training_is_seen_at_once():
    def run() -> None:
        x, y = _prepare(4 * PREP_OPS // 3)  # (4 watched calls per example: past the budget)
        model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 2), nn.Softmax(dim=1))
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        for i in range(20):
            opt.zero_grad()
            F.cross_entropy(model(x[i * 32:(i + 1) * 32]), y[i * 32:(i + 1) * 32]).backward()
            opt.step()

    calls, obs = _watched(run)
    assert PREP_OPS <= calls < PREP_OPS + 2_000  # (the training steps' own calls on top of the budget)
    found = obs.report().by_code("loss-input.probabilities-into-logit-loss")
    assert found and found[0].first_step == 1  # the softmax before cross_entropy, at the first step


def test_a_network_without_modules_is_seen_again_from_its_first_backward():
    def run() -> None:
        x, y = _prepare(4 * PREP_OPS // 3)
        torch.manual_seed(0)
        w1 = (torch.randn(8, 16) * 0.3).requires_grad_()
        w2 = (torch.randn(16, 2) * 0.3).requires_grad_()
        for i in range(20):
            out = torch.softmax(torch.relu(x[i * 32:(i + 1) * 32] @ w1) @ w2, dim=1)
            F.cross_entropy(out, y[i * 32:(i + 1) * 32]).backward()
            with torch.no_grad():
                for w in (w1, w2):
                    w -= 0.1 * w.grad
                    w.grad = None

    calls, obs = _watched(run)
    assert calls < PREP_OPS + 2_000
    found = obs.report().by_code("loss-input.probabilities-into-logit-loss")
    assert found and found[0].first_step <= 3


def test_a_short_preparation_is_followed_whole():
    def run() -> None:
        x, y = _prepare(500)
        model = nn.Linear(8, 2)
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        for i in range(5):
            opt.zero_grad()
            F.cross_entropy(model(x[i * 32:(i + 1) * 32]), y[i * 32:(i + 1) * 32]).backward()
            opt.step()

    calls, _ = _watched(run)
    assert calls >= 4 * 500  # every preparation call under the budget is watched, as before
