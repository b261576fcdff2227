"""loss-input.class-ids-regressed: integer class ids as the targets of a one-output regression loss.

Injected in three styles (balanced ids 0..2 under MSE on (N, 1), ten balanced ids under nn.L1Loss on
(N,) with a rounded accuracy in evaluation, skewed ids 0..4 under SmoothL1 with round().long() == y:
warning from the comparison alone); ratings 1..5 and small counts without a rounded comparison are
info; real-valued targets, years, two values, many values, multi-output regression and a classifier
stay quiet.
"""

from __future__ import annotations

from typing import Callable

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from nndoctor.debug.class_regression import ClassIdsRegressed, judge_ids
from nndoctor.monitor import Observer

CODE = "loss-input.class-ids-regressed"
N, D = 64, 6
_G = torch.Generator().manual_seed(0)
X = torch.randn(6 * N, D, generator=_G)


def balanced(k: int) -> torch.Tensor:
    return torch.arange(6 * N) % k


def skewed(k: int, low: int = 0) -> torch.Tensor:
    p = torch.tensor([0.5 ** (i + 1) for i in range(k)])
    return torch.multinomial(p / p.sum(), 6 * N, replacement=True, generator=_G) + low


def _fit(y: torch.Tensor, loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], squeeze: bool = False,
         accuracy: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None, outputs: int = 1) -> list:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(D, 16), nn.ReLU(), nn.Linear(16, outputs))
    opt = torch.optim.Adam(model.parameters(), 1e-2)
    with Observer(checks=[ClassIdsRegressed]) as obs:
        for _epoch in range(2):
            for i in range(0, 5 * N, N):
                out = model(X[i:i + N])
                out = out.squeeze(1) if squeeze else out
                target = y[i:i + N].float()
                value = loss(out, target if squeeze or outputs > 1 or target.dim() > 1 else target[:, None])
                opt.zero_grad()
                value.backward()
                opt.step()
            if accuracy is not None:
                with torch.no_grad():
                    out = model(X[5 * N:]).squeeze(1)
                    accuracy(out, y[5 * N:])
    assert not obs.internal_errors, obs.internal_errors
    return [f for f in obs.findings if f.code == CODE]


def rounded(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return (out.round() == y).float().mean()


def truncated(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return out.clamp(0, 4).round().long().eq(y).sum()


@pytest.mark.parametrize("y,loss,squeeze,accuracy", [
    (balanced(3), F.mse_loss, False, None),
    (balanced(10), nn.L1Loss(), True, rounded),
    (skewed(5), F.smooth_l1_loss, True, truncated),
])
def test_class_ids_regressed_are_named(y, loss, squeeze: bool, accuracy) -> None:
    found = _fit(y, loss, squeeze, accuracy)
    assert len(found) == 1
    f = found[0]
    assert f.severity.value == "warning"
    assert "cross_entropy" in f.message and f.evidence["ids"][0] == 0


@pytest.mark.parametrize("y,accuracy", [(skewed(5, low=1), None), (skewed(6), None),
                                        (balanced(5) + 1, rounded)])  # ratings 1..5, rounded and compared
def test_ratings_and_small_counts_are_info(y: torch.Tensor, accuracy) -> None:
    found = _fit(y, F.mse_loss, True, accuracy)
    assert len(found) == 1 and found[0].severity.value == "info"


@pytest.mark.parametrize("y", [
    torch.randn(6 * N, generator=_G),  # real-valued
    torch.randint(1990, 2021, (6 * N,), generator=_G),  # years
    balanced(2),  # two values: a binary target
    torch.randint(0, 101, (6 * N,), generator=_G),  # a 0..100 score: many values
    balanced(4) * 2,  # ids with gaps: not a run
])
def test_real_valued_lookalikes_are_quiet(y: torch.Tensor) -> None:
    assert _fit(y, F.mse_loss, True, rounded) == []


def test_multi_output_and_classifier_are_quiet() -> None:
    y = balanced(3)
    assert _fit(torch.stack([y, y], 1), F.mse_loss, outputs=2) == []
    assert _fit(y, lambda out, t: F.cross_entropy(out, t.long()), squeeze=True, outputs=3) == []


def test_judge_ids() -> None:
    from collections import Counter
    assert judge_ids(Counter({0: 30, 1: 30, 2: 30})) == "nominal"
    assert judge_ids(Counter({1: 30, 2: 30, 3: 30})) == "small"
    assert judge_ids(Counter({0: 80, 1: 10, 2: 5})) == "small"
    assert judge_ids(Counter({0: 30, 1: 30})) is None
    assert judge_ids(Counter({0: 30, 2: 30, 3: 30})) is None


def test_rounding_a_scalar_is_no_internal_error() -> None:
    # fake quantisation computes a zero point with (-lo / scale).round() on a 0-dim tensor
    def scalar_round(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        zero_point = (-out.min() / 0.1).round()
        return (out.round() + 0 * zero_point == y).float().mean()
    _fit(balanced(3), F.mse_loss, True, scalar_round)  # (_fit asserts no internal error)
