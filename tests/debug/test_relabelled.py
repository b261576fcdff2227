"""labels.changed-between-epochs from `nndoctor run`: the same training input paired with another label on a
later step (a Dataset drawing labels at random, per-epoch permutations of inputs and labels apart, a batch
re-sorted for packing without its labels, multi-label BCE rows shuffled apart), named; consistent pairs,
augmented inputs, discrete data with conflicting duplicates and contrastive arange targets quiet."""

from __future__ import annotations

from typing import Callable, Iterator

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.utils.rnn import pack_padded_sequence
from torch.utils.data import DataLoader, Dataset, TensorDataset

from nndoctor.debug.relabelled import RelabelledInputs
from nndoctor.findings import Severity
from nndoctor.monitor import Observer, Schedule
from tests.helpers import run_script

CODE = "labels.changed-between-epochs"
_G = torch.Generator().manual_seed(0)
X = torch.randn(320, 10, generator=_G)
Y = (X[:, 0] > 0).long() + (X[:, 1] > 0).long()          # 3 classes


def _observe(model: nn.Module, batches: Callable[[], Iterator], loss: Callable = F.cross_entropy,
             epochs: int = 4) -> list:
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    with Observer(checks=[RelabelledInputs], schedule=Schedule(dense=4, every=2)) as obs:
        for _ in range(epochs):
            for xb, yb in batches():
                opt.zero_grad()
                loss(model(xb), yb).backward()
                opt.step()
    assert not obs.internal_errors, obs.internal_errors
    return [f for f in obs.findings if f.code == CODE]


def _mlp(out: int = 3) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(10, 16), nn.ReLU(), nn.Linear(16, out))


class _RelabelSet(Dataset):
    """A label replaced by a random class half of the time (a 'label augmentation')."""

    def __len__(self) -> int:
        return len(X)

    def __getitem__(self, i: int):
        y = Y[i] if torch.rand(()) < 0.5 else torch.randint(0, 3, ())
        return X[i], y


def _apart_each_epoch():
    p, q = torch.randperm(len(X)), torch.randperm(len(X))
    xs, ys = X[p], Y[q]                                      # two permutations: pairs broken anew each epoch
    return ((xs[i:i + 32], ys[i:i + 32]) for i in range(0, len(X), 32))


def test_a_dataset_drawing_labels_at_random_is_named():
    found = _observe(_mlp(), lambda: DataLoader(_RelabelSet(), batch_size=32, shuffle=True))
    assert len(found) == 1 and found[0].severity == Severity.WARNING and found[0].category == "labels"
    assert found[0].evidence["matched"] >= 20 and found[0].evidence["share"] >= 0.1


def test_inputs_and_labels_permuted_apart_each_epoch_are_named():
    found = _observe(_mlp(), _apart_each_epoch)
    assert len(found) == 1 and found[0].evidence["share"] > 0.3


V, T = 12, 10
TOKENS = torch.randint(1, V, (320, T), generator=_G)
LENGTHS = torch.randint(3, T + 1, (320,), generator=_G)
for _i in range(320):
    TOKENS[_i, LENGTHS[_i]:] = 0
SEQ_Y = (TOKENS[:, 0] > 6).long()


class _Packed(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.emb = nn.Embedding(V, 8, padding_idx=0)
        self.rnn = nn.GRU(8, 16, batch_first=True)
        self.fc = nn.Linear(16, 2)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        _, h = self.rnn(pack_padded_sequence(self.emb(x), lengths, batch_first=True))
        return self.fc(h[-1])


@pytest.mark.parametrize("reorder_labels,expected", [(False, True), (True, False)], ids=["labels-left", "reordered"])
def test_a_batch_sorted_by_length_without_its_labels_is_named(reorder_labels, expected):
    torch.manual_seed(0)
    model = _Packed()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    with Observer(checks=[RelabelledInputs], schedule=Schedule(dense=4, every=2)) as obs:
        for _ in range(4):
            perm = torch.randperm(320)
            for i in range(0, 320, 32):
                b = perm[i:i + 32]
                lens, order = LENGTHS[b].sort(descending=True)
                yb = SEQ_Y[b][order] if reorder_labels else SEQ_Y[b]
                opt.zero_grad()
                F.cross_entropy(model(TOKENS[b][order], lens), yb).backward()
                opt.step()
    assert not obs.internal_errors, obs.internal_errors
    assert bool([f for f in obs.findings if f.code == CODE]) is expected


def test_multi_label_bce_rows_shuffled_apart_each_epoch_are_named():
    tags = torch.stack([X[:, 0] > 0, X[:, 1] > 0.5, X[:, 2] < 0], 1).float()

    def batches():
        p, q = torch.randperm(len(X)), torch.randperm(len(X))
        return ((X[p][i:i + 32], tags[q][i:i + 32]) for i in range(0, len(X), 32))
    found = _observe(_mlp(), batches, loss=F.binary_cross_entropy_with_logits)
    assert len(found) == 1 and found[0].evidence["loss"] == "binary_cross_entropy_with_logits"


def test_consistent_pairs_and_augmented_inputs_are_quiet():
    assert _observe(_mlp(), lambda: DataLoader(TensorDataset(X, Y), batch_size=32, shuffle=True)) == []

    def noisy():                                            # fresh noise: inputs never match, labels random
        for i in range(0, len(X), 32):
            yield X[i:i + 32] + 0.1 * torch.randn(len(X[i:i + 32]), 10), torch.randint(0, 3, (len(X[i:i + 32]),))
    assert _observe(_mlp(), noisy) == []


def test_discrete_data_with_conflicting_duplicates_is_quiet():
    g = torch.Generator().manual_seed(3)
    xd = (torch.rand(320, 10, generator=g) > 0.5).float()
    xd[:, 3:] = 0                                            # 8 distinct inputs: labels are noisy by nature
    yd = ((xd[:, 0] + xd[:, 1] + torch.rand(320, generator=g)) > 1.5).long()
    assert _observe(_mlp(2), lambda: DataLoader(TensorDataset(xd, yd), batch_size=32, shuffle=True)) == []


def test_skip_gram_one_hot_centre_words_are_quiet():
    g = torch.Generator().manual_seed(4)
    centre = torch.randint(0, 10, (320,), generator=g)
    context = (centre + torch.randint(1, 3, (320,), generator=g)) % 10      # several labels per word by nature
    words = F.one_hot(centre, 10).float()

    def batches():
        p = torch.randperm(320)
        return ((words[p][i:i + 1], context[p][i:i + 1]) for i in range(320))   # one pair a step
    torch.manual_seed(0)
    assert _observe(nn.Sequential(nn.Linear(10, 4), nn.Linear(4, 10)), batches, epochs=1) == []


def test_contrastive_arange_targets_are_quiet():
    torch.manual_seed(0)
    enc = nn.Linear(10, 8)

    class _Clip(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.enc = enc

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            z = F.normalize(self.enc(x), dim=1)
            return z @ F.normalize(self.enc(x.flip(1)), dim=1).t()

    def batches():
        p = torch.randperm(len(X))
        return ((X[p][i:i + 32], torch.arange(32)) for i in range(0, len(X), 32))
    assert _observe(_Clip(), batches) == []


_SCRIPT = '''
import torch, torch.nn as nn
from torch.utils.data import Dataset, DataLoader
torch.manual_seed(0)
X = torch.randn(1200, 12)
y = (X[:, 0] + X[:, 1] > 0).long() + (X[:, 2] > 0.5).long()
class DS(Dataset):
    def __len__(self): return len(X)
    def __getitem__(self, i): return X[i], LABEL
model = nn.Sequential(nn.Linear(12, 32), nn.ReLU(), nn.Linear(32, 3))
opt = torch.optim.Adam(model.parameters(), lr=1e-3)
for epoch in range(6):
    for xb, yb in DataLoader(DS(), batch_size=32, shuffle=True):
        opt.zero_grad(); nn.functional.cross_entropy(model(xb), yb).backward(); opt.step()
'''


@pytest.mark.parametrize("label,expected", [("y[torch.randint(0, len(y), ()).item()]", True), ("y[i]", False)],
                         ids=["random-index", "same-index"])
def test_script(tmp_path, label, expected):
    result = run_script(tmp_path, _SCRIPT.replace("LABEL", label))
    assert (CODE in result.codes("warning")) is expected
    if expected:
        assert "labels" in result.categories()
