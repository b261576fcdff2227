"""The dropout-follows-eval-mode remedy of train-mode.functional-dropout-in-eval: a functional
dropout inside a module's forward left on in eval mode (``F.dropout(x, p)``, training defaults to
True) is off in the re-run while its module is in eval mode; the run then evaluates exactly like its
fixed twin (``training=self.training``), in three styles. Dropout that already follows the mode
(nn.Dropout, ``training=self.training``) is untouched: bit-identical runs."""

from __future__ import annotations

from typing import Callable

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from helpers import finding_of, remedied
from sklearn.datasets import load_digits

from nndoctor.debug.eval_dropout import DropoutIgnoresEvalMode

_X, _Y = load_digits(return_X_y=True)
X = torch.tensor(_X / 16.0, dtype=torch.float32)
Y = torch.tensor(_Y)


class _Mlp(nn.Module):
    """F.dropout(h, 0.5): training=True by default (``fixed``: training=self.training)."""

    def __init__(self, fixed: bool) -> None:
        super().__init__()
        self.fc1, self.fc2, self.fixed = nn.Linear(64, 128), nn.Linear(128, 10), fixed

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.fc1(x))
        h = F.dropout(h, 0.5, training=self.training) if self.fixed else F.dropout(h, 0.5)
        return self.fc2(h)


class _Conv(nn.Module):
    """F.dropout2d(h, 0.3, True): hard-coded positionally (``fixed``: self.training)."""

    def __init__(self, fixed: bool) -> None:
        super().__init__()
        self.conv, self.head, self.fixed = nn.Conv2d(1, 16, 3, padding=1), nn.Linear(16 * 16, 10), fixed

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.conv(x.view(-1, 1, 8, 8)))
        h = F.dropout2d(h, 0.3, self.training if self.fixed else True)
        return self.head(F.max_pool2d(h, 2).flatten(1))


class _Block(nn.Module):
    def __init__(self, fixed: bool) -> None:
        super().__init__()
        self.fc, self.fixed = nn.Linear(64, 96), fixed

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.dropout(torch.tanh(self.fc(x)), p=0.6, training=self.training if self.fixed else True)


def _nested(fixed: bool) -> nn.Module:
    """A block inside a Sequential calls F.dropout(p=0.6, training=True) by keyword."""
    return nn.Sequential(_Block(fixed), nn.Linear(96, 10))


def _accuracy(make: Callable[[bool], nn.Module], fixed: bool = False) -> float:
    """Adam on 1,400 digits, evaluated (eval mode, no_grad) after every epoch; the last accuracy."""
    torch.manual_seed(0)
    model = make(fixed)
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    acc = 0.0
    for _ in range(4):
        model.train()
        for i in range(0, 1400, 50):
            opt.zero_grad()
            F.cross_entropy(model(X[i:i + 50]), Y[i:i + 50]).backward()
            opt.step()
        model.eval()
        with torch.no_grad():
            acc = float((model(X[1400:]).argmax(1) == Y[1400:]).float().mean())
    return acc


STYLES = [_Mlp, _Conv, _nested]


@pytest.mark.parametrize("make", STYLES, ids=["mlp-default", "conv-positional", "nested-keyword"])
def test_functional_dropout_in_eval_is_switched_off_and_evaluates_like_the_twin(make):
    finding = finding_of(lambda: _accuracy(make), [DropoutIgnoresEvalMode], "train-mode.functional-dropout-in-eval")
    bug, twin = _accuracy(make), _accuracy(make, fixed=True)
    with remedied(finding):
        fixed = _accuracy(make)
    assert fixed == twin and twin > bug, (bug, fixed, twin)  # the same training, a deterministic evaluation


class _Healthy(nn.Module):
    def __init__(self, module_dropout: bool) -> None:
        super().__init__()
        self.fc1, self.fc2, self.drop = nn.Linear(64, 128), nn.Linear(128, 10), nn.Dropout(0.5)
        self.module_dropout = module_dropout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.fc1(x))
        return self.fc2(self.drop(h) if self.module_dropout else F.dropout(h, 0.5, self.training))


@pytest.mark.parametrize("module_dropout", [True, False], ids=["nn.Dropout", "training=self.training"])
def test_dropout_that_follows_the_mode_is_untouched(module_dropout):
    finding = {"code": "train-mode.functional-dropout-in-eval", "location": "model",
               "evidence": {"site": "train.py:12", "p": 0.5}}
    make = lambda fixed: _Healthy(module_dropout)  # noqa: E731
    plain = _accuracy(make)
    torch.manual_seed(0)
    with remedied(finding):
        again = _accuracy(make)
    assert again == plain


def test_monte_carlo_dropout_in_a_module_put_back_in_train_mode_is_kept():
    """A module put back in train mode on purpose (MC dropout) keeps dropping units in evaluation."""
    finding = {"code": "train-mode.functional-dropout-in-eval", "location": "model", "evidence": {}}
    model = _Mlp(fixed=False)
    model.train()
    with remedied(finding), torch.no_grad():
        torch.manual_seed(1)
        a = model(X[:20])
        torch.manual_seed(2)
        b = model(X[:20])
    assert not torch.equal(a, b)
