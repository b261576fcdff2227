"""labels.padding-not-ignored: padded positions counted by a sequence cross-entropy; ignored ones quiet."""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F

from nndoctor.debug.padding import PaddingNotIgnored
from nndoctor.monitor import Observer

CODE = "labels.padding-not-ignored"
V, T, N, TAGS = 20, 16, 256, 5
_G = torch.Generator().manual_seed(0)
LENGTHS = torch.randint(4, T + 1, (N,), generator=_G)
POS = torch.arange(T)[None, :]
REAL = POS < LENGTHS[:, None]
TOKENS = torch.randint(1, V, (N, T), generator=_G)
TAG_IDS = torch.randint(1, TAGS, (N, T), generator=_G)


def padded(pad: int, left: bool = False) -> torch.Tensor:
    real = REAL.flip(1) if left else REAL
    return torch.where(real, TOKENS, torch.full_like(TOKENS, pad))


def _findings(fn: Callable[[], None]) -> list:
    torch.manual_seed(0)
    with Observer(checks=[PaddingNotIgnored]) as obs:
        fn()
    assert not obs.internal_errors, obs.internal_errors
    return [f for f in obs.findings if f.code == CODE]


class Tagger(nn.Module):
    def __init__(self, padding_idx: int | None = 0) -> None:
        super().__init__()
        self.emb = nn.Embedding(V, 32, padding_idx=padding_idx)
        self.rnn = nn.LSTM(32, 32, batch_first=True)
        self.out = nn.Linear(32, TAGS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.rnn(self.emb(x))[0])


def _tagging(loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], tags: torch.Tensor,
             x: torch.Tensor | None = None, padding_idx: int | None = 0, steps: int = 12) -> None:
    x = padded(0) if x is None else x
    model = Tagger(padding_idx)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for s in range(steps):
        i = (s * 32) % N
        loss = loss_fn(model(x[i:i + 32]).reshape(-1, TAGS), tags[i:i + 32].reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()


def test_tagger_with_padding_idx_and_module_loss() -> None:
    tags = torch.where(REAL, TAG_IDS, 0)  # tag 0 pads the tags like token 0 pads the words
    found = _findings(lambda: _tagging(nn.CrossEntropyLoss(), tags))
    assert len(found) == 1, found
    f = found[0]
    assert f.evidence["how"] == "padding_idx" and f.evidence["pad_target"] == 0 and f.evidence["pad_share"] > 0.3
    assert "ignore_index=0" in f.fixes[0]


def test_language_model_padded_without_padding_idx_functional_loss_sgd() -> None:
    for left in (False, True):
        seq = padded(0, left=left)  # no padding_idx: the pad is the value used only as a run

        def run(seq: torch.Tensor = seq) -> None:
            model = Tagger(padding_idx=None)
            model.out = nn.Linear(32, V)
            opt = torch.optim.SGD(model.parameters(), lr=0.1)
            for s in range(12):
                b = seq[(s * 32) % N:(s * 32) % N + 32]
                x, y = b[:, :-1], b[:, 1:]
                loss = F.cross_entropy(model(x).transpose(1, 2), y)
                opt.zero_grad()
                loss.backward()
                opt.step()

        found = _findings(run)
        assert len(found) == 1, (left, found)
        assert found[0].evidence["how"] == ("leading run" if left else "trailing run")


def test_ignored_padding_and_masked_losses_stay_quiet() -> None:
    tags0 = torch.where(REAL, TAG_IDS, 0)
    tags_ignored = torch.where(REAL, TAG_IDS, -100)
    w = torch.ones(TAGS)
    w[0] = 0.0

    def masked(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        per = F.cross_entropy(logits, y, reduction="none")
        keep = (y != 0).float()
        return (per * keep).sum() / keep.sum()

    def run() -> None:
        _tagging(nn.CrossEntropyLoss(ignore_index=0), tags0)
        _tagging(F.cross_entropy, tags_ignored)  # targets set to the default ignore_index
        _tagging(lambda a, b: F.cross_entropy(a, b, weight=w), tags0)
        _tagging(masked, tags0)

    assert _findings(run) == []


def test_fixed_length_sequences_and_frequent_classes_stay_quiet() -> None:
    frequent = torch.where(torch.rand(N, T, generator=_G) < 0.6, 0, TAG_IDS)  # tag 0 "O" at 60%, scattered
    eos = TOKENS.clone()
    eos[:, -1] = V - 1  # one end-of-sequence token per row, no padding

    def run() -> None:
        _tagging(nn.CrossEntropyLoss(), frequent, x=TOKENS)  # padding_idx=0 but no token 0: no padding
        _tagging(F.cross_entropy, frequent, x=eos, padding_idx=None)

    assert _findings(run) == []
