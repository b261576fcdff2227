"""labels.real-class-ignored: ignore_index naming a real class of a classifier (module and functional
losses), named; -100 / -1 for unlabelled rows, a tagger's padding, and mostly-unlabelled data quiet."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from nndoctor.debug.ignored_class import RealClassIgnored
from nndoctor.findings import Severity
from nndoctor.monitor import Observer, Schedule

CODE = "labels.real-class-ignored"
_G = torch.Generator().manual_seed(0)
X = torch.randn(192, 6, generator=_G)
Y = torch.bucketize(X[:, 0].contiguous(), torch.tensor([-0.5, 0.5]))  # 3 classes, about a third each


def _train(loss, targets=Y, inputs=X, model=None) -> list:
    torch.manual_seed(0)
    model = model or nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 3))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    with Observer(checks=[RealClassIgnored], schedule=Schedule(dense=4, every=2)) as obs:
        for i in range(12):
            xb, yb = inputs[i % 6 * 32:(i % 6 + 1) * 32], targets[i % 6 * 32:(i % 6 + 1) * 32]
            opt.zero_grad()
            out = model(xb)
            loss(out.reshape(-1, out.shape[-1]), yb.reshape(-1)).backward()
            opt.step()
    assert not obs.internal_errors, obs.internal_errors
    return [f for f in obs.findings if f.code == CODE]


@pytest.mark.parametrize("loss", [nn.CrossEntropyLoss(ignore_index=0),
                                  lambda s, t: F.nll_loss(F.log_softmax(s, 1), t, ignore_index=1)],
                         ids=["module-ce", "functional-nll"])
def test_a_real_class_ignored_by_the_loss_is_a_warning(loss):
    found = _train(loss)
    assert len(found) == 1 and found[0].severity is Severity.WARNING, found
    assert found[0].evidence["like_other_classes"] and 0.2 < found[0].evidence["share"] < 0.5


def test_unlabelled_rows_marked_minus_one_or_minus_100_are_quiet():
    y = Y.clone()
    y[::3] = -1
    assert _train(nn.CrossEntropyLoss(ignore_index=-1), y) == []
    y[::3] = -100
    assert _train(nn.CrossEntropyLoss(), y) == []


def test_mostly_unlabelled_rows_marked_with_class_zero_are_info():
    y = Y + 1
    y[: int(0.8 * len(y))] = 0  # 4 outputs: 0 = unlabelled (80% of rows), classes 1..3
    found = _train(nn.CrossEntropyLoss(ignore_index=0), y,
                   model=nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 4)))
    assert [f.severity for f in found] == [Severity.INFO], found


class Tagger(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.emb, self.out = nn.Embedding(10, 8, padding_idx=0), nn.Linear(8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.emb(x))


def test_a_taggers_padding_target_is_quiet():
    tokens = torch.randint(1, 10, (192, 5), generator=_G)
    tokens[::2, 3:] = 0
    tags = tokens % 3
    assert _train(nn.CrossEntropyLoss(ignore_index=0), tags, tokens, Tagger()) == []
