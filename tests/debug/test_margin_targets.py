"""preprocessing.margin-loss-targets-not-signed: {0, 1} labels into the four margin losses that read the label
as a sign (module and functional forms, siamese pairs, a Dataset-built pair loader), named; +-1 labels,
real-valued soft-margin targets and multilabel_soft_margin_loss's legitimate {0, 1} quiet."""

from __future__ import annotations

from typing import Callable

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset

from nndoctor.debug.margin_targets import MarginLossTargets
from nndoctor.findings import Severity
from nndoctor.monitor import Observer, Schedule
from tests.helpers import assert_script_headline, run_script

CODE = "preprocessing.margin-loss-targets-not-signed"
_G = torch.Generator().manual_seed(0)
X = torch.randn(256, 6, generator=_G)
Y01 = (X[:, 0] > 0).float()                     # {0, 1}
YPM = Y01 * 2 - 1                               # {-1, +1}


def _observe(step: Callable[[nn.Module, int], torch.Tensor], out: int = 1) -> list:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, out))
    opt = torch.optim.SGD(model.parameters(), lr=1e-2)
    with Observer(checks=[MarginLossTargets], schedule=Schedule(dense=4, every=2)) as obs:
        for i in range(8):
            opt.zero_grad()
            step(model, i % 8 * 32).backward()
            opt.step()
    assert not obs.internal_errors, obs.internal_errors
    return [f for f in obs.findings if f.code == CODE]


def _score(loss: nn.Module | Callable, y: torch.Tensor) -> Callable:
    return lambda model, i: loss(model(X[i:i + 32]).squeeze(1), y[i:i + 32])


def _pairs(loss: Callable, y: torch.Tensor) -> Callable:
    """Siamese style: the two halves of the batch are embedded and compared; the label is the third argument."""
    def step(model: nn.Module, i: int) -> torch.Tensor:
        a, b = model(X[i:i + 16]), model(X[i + 16:i + 32])
        same = (y[i:i + 16] == y[i + 16:i + 32]).float()
        return loss(a, b, same if y is Y01 else same * 2 - 1)
    return step


def _ranking(loss: Callable, y: torch.Tensor) -> Callable:
    def step(model: nn.Module, i: int) -> torch.Tensor:
        s1, s2 = model(X[i:i + 16]).squeeze(1), model(X[i + 16:i + 32]).squeeze(1)
        first_higher = (X[i:i + 16, 0] > X[i + 16:i + 32, 0]).float()
        return loss(s1, s2, first_higher if y is Y01 else first_higher * 2 - 1)
    return step


_FAULTS = {
    "module-soft-margin": (lambda y: _score(nn.SoftMarginLoss(), y), 1),
    "functional-hinge-embedding": (lambda y: _score(F.hinge_embedding_loss, y), 1),
    "siamese-cosine-embedding-module": (lambda y: _pairs(nn.CosineEmbeddingLoss(margin=0.2), y), 8),
    "functional-margin-ranking-keyword": (lambda y: _ranking(lambda a, b, t: F.margin_ranking_loss(a, b, target=t,
                                                                                                   margin=0.5), y), 1),
}


@pytest.mark.parametrize("name", list(_FAULTS))
def test_zero_one_labels_into_a_margin_loss_are_an_error(name):
    make, out = _FAULTS[name]
    found = _observe(make(Y01), out)
    assert len(found) == 1, found
    assert found[0].severity == Severity.ERROR and found[0].category == "preprocessing"
    assert found[0].evidence["bad_values"] == ["0"]
    assert "2 * y - 1" in found[0].fixes[0]


@pytest.mark.parametrize("name", list(_FAULTS))
def test_plus_minus_one_labels_are_quiet(name):
    make, out = _FAULTS[name]
    assert _observe(make(YPM), out) == []


def test_one_two_class_ids_are_named_too():
    found = _observe(_score(nn.SoftMarginLoss(), Y01 + 1))
    assert len(found) == 1 and found[0].evidence["label_values"] == ["1", "2"]


def test_real_valued_soft_margin_targets_and_multilabel_soft_margin_are_quiet():
    soft = torch.tanh(X[:, 1] * 3)               # continuous targets in (-1, 1)
    assert _observe(_score(nn.SoftMarginLoss(), soft)) == []
    multi = (X[:, :3] > 0).float()                # multilabel_soft_margin_loss takes {0, 1} by design
    assert _observe(lambda m, i: F.multilabel_soft_margin_loss(m(X[i:i + 32]), multi[i:i + 32]), 3) == []


class _PairSet(Dataset):
    """Pairs of rows labelled 1 (same class) or 0 (different class), as a contrastive tutorial builds them."""

    def __init__(self, n: int = 256) -> None:
        g = torch.Generator().manual_seed(1)
        self.i, self.j = torch.randint(0, 256, (n,), generator=g), torch.randint(0, 256, (n,), generator=g)

    def __len__(self) -> int:
        return len(self.i)

    def __getitem__(self, k: int):
        a, b = int(self.i[k]), int(self.j[k])
        return X[a], X[b], torch.tensor(float(Y01[a] == Y01[b]))


def test_dataset_built_pairs_with_zero_one_labels_are_named():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 8))
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    crit = nn.CosineEmbeddingLoss()
    with Observer(checks=[MarginLossTargets], schedule=Schedule(dense=4, every=2)) as obs:
        for a, b, same in DataLoader(_PairSet(), batch_size=32, shuffle=True):
            opt.zero_grad()
            crit(net(a), net(b), same).backward()
            opt.step()
    found = [f for f in obs.findings if f.code == CODE]
    assert len(found) == 1 and found[0].evidence["label_argument"] == "third"


_SCRIPT = '''
import torch, torch.nn as nn
torch.manual_seed(0)
X = torch.randn(600, 10)
y = (X[:, 0] + 0.5 * X[:, 1] > 0).float()
model = nn.Sequential(nn.Linear(10, 32), nn.ReLU(), nn.Linear(32, 1))
opt = torch.optim.SGD(model.parameters(), lr=0.05)
crit = nn.SoftMarginLoss()
for epoch in range(4):
    perm = torch.randperm(500)
    for i in range(0, 500, 32):
        b = perm[i:i + 32]
        opt.zero_grad()
        crit(model(X[b]).squeeze(1), LABELS).backward()
        opt.step()
'''


@pytest.mark.parametrize("labels,expected", [("y[b]", True), ("y[b] * 2 - 1", False)], ids=["01", "signed"])
def test_script_headline_is_the_label_encoding(tmp_path, labels, expected):
    result = run_script(tmp_path, _SCRIPT.replace("LABELS", labels))
    assert_script_headline(result, CODE, expected)
