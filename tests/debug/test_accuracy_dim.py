"""shape.accuracy-argmax-wrong-dim: an accuracy computed from argmax()/max() without dim, or over the batch.

Injected in four styles (out.argmax() in an evaluation loop, torch.max(out) in the training loop,
torch.argmax(out, 0) against (N, 1) labels, out.max(0) indices moved to cpu); argmax(dim=1),
argmax(-1), max(1), a class-major (C, N) tensor reduced over dim 0, one sample's logits and an argmax()
not compared with labels stay quiet. The evaluation-loop style needs the light function mode to pass
argmax/eq to the checks that ask for them (nndoctor/monitor/functions.py): it fails on the old code.
"""

from __future__ import annotations

from typing import Callable

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from nndoctor.debug.accuracy_dim import PredictionOverWrongDim, reduced_dim
from nndoctor.monitor import Observer

CODE = "shape.accuracy-argmax-wrong-dim"
N, D, C = 32, 8, 3
_G = torch.Generator().manual_seed(0)
X = torch.randn(4 * N, D, generator=_G)
Y = (X[:, 0] > 0).long() + (X[:, 1] > 0.5).long()


def _train(accuracy: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], where: str = "eval", epochs: int = 2,
           eval_from: int = 0) -> list:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(D, 16), nn.ReLU(), nn.Linear(16, C))
    opt = torch.optim.Adam(model.parameters(), 1e-2)
    with Observer(checks=[PredictionOverWrongDim]) as obs:
        for epoch in range(epochs):
            model.train()
            for i in range(0, 3 * N, N):
                out = model(X[i:i + N])
                loss = F.cross_entropy(out, Y[i:i + N])
                opt.zero_grad()
                loss.backward()
                opt.step()
                if where == "train":
                    accuracy(out.detach(), Y[i:i + N])
            if epoch < eval_from:
                continue
            model.eval()
            with torch.no_grad():
                for i in range(3 * N, 4 * N, N // 2):
                    accuracy(model(X[i:i + N // 2]), Y[i:i + N // 2])
    assert not obs.internal_errors, obs.internal_errors
    return [f for f in obs.findings if f.code == CODE]


def no_dim(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return (out.argmax() == y).float().mean()


def torch_max_value(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return torch.eq(torch.max(out), y).sum()


def batch_dim(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    pred = torch.argmax(out, 0)
    return (pred == y.view(-1, 1)).float().mean()


def max_batch_cpu(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    _, pred = out.max(0)
    return pred.cpu().eq(y[:, None]).sum()


def right_dim1(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return (out.argmax(dim=1) == y).float().mean()


def right_last(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return (torch.argmax(out, -1) == y).float().mean()


def right_max1(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    _, pred = torch.max(out.data, 1)
    return (pred == y).sum()


def class_major(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return (out.t().argmax(0) == y).float().mean()


def one_sample(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return (out[:1].argmax() == y[:1]).float().mean()


def argmax_not_compared(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    worst = F.cross_entropy(out, y, reduction="none").argmax()  # the hardest sample: no accuracy
    return (out.argmax(1) == y).float().mean() + worst


@pytest.mark.parametrize("accuracy,where", [
    (no_dim, "eval"), (torch_max_value, "train"), (batch_dim, "eval"), (max_batch_cpu, "train"),
])
def test_prediction_without_class_dim_is_named(accuracy, where: str) -> None:
    found = _train(accuracy, where)
    assert len(found) == 1, accuracy.__name__
    f = found[0]
    assert f.severity.value == "warning" and f.evidence["comparisons"] >= 2
    assert "argmax(dim=1)" in f.message


def test_evaluation_between_sampled_steps_is_seen() -> None:
    """Evaluations after the dense start (unsampled steps: the light function mode) only."""
    found = _train(no_dim, "eval", epochs=7, eval_from=4)
    assert len(found) == 1 and found[0].evidence["step"] > 8


@pytest.mark.parametrize("accuracy", [right_dim1, right_last, right_max1, class_major, one_sample,
                                      argmax_not_compared])
@pytest.mark.parametrize("where", ["eval", "train"])
def test_per_sample_predictions_are_quiet(accuracy, where: str) -> None:
    assert _train(accuracy, where) == []


def test_reduced_dim() -> None:
    assert reduced_dim("argmax", (None,), {}) == (True, None)
    assert reduced_dim("argmax", (None, 1), {}) == (True, 1)
    assert reduced_dim("max", (None,), {"dim": 0}) == (True, 0)
    assert reduced_dim("max", (None, torch.zeros(2)), {}) is None
