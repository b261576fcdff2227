"""shape.attention-batch-seq-swapped: a batch_first=False attention layer fed (N, T, E) batches.

Injected with a 2-layer nn.TransformerEncoder (Module, F.cross_entropy, Adam), a bare
nn.MultiheadAttention in main() (nn.CrossEntropyLoss, SGD) and a DataLoader-fed TransformerDecoderLayer;
batch_first=True, a transposed input and per-position targets stay quiet.
"""

from __future__ import annotations

from typing import Callable

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

from nndoctor.debug.attention_layout import AttentionBatchSeqSwapped
from nndoctor.monitor import Observer

CODE = "shape.attention-batch-seq-swapped"
V, T, N, D = 20, 10, 256, 16
_G = torch.Generator().manual_seed(0)
X = torch.randint(0, V, (N, T), generator=_G)
Y = (X[:, 0] > V // 2).long()


def _findings(fn: Callable[[], None]) -> list:
    torch.manual_seed(0)
    with Observer(checks=[AttentionBatchSeqSwapped]) as obs:
        fn()
    assert not obs.internal_errors, obs.internal_errors
    return [f for f in obs.findings if f.code == CODE]


class Encoder(nn.Module):
    def __init__(self, batch_first: bool = False, transpose: bool = False) -> None:
        super().__init__()
        self.transpose = transpose
        self.emb = nn.Embedding(V, D)
        layer = nn.TransformerEncoderLayer(D, 2, 32, dropout=0.0, batch_first=batch_first)
        self.enc = nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)
        self.head = nn.Linear(D, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.emb(x)
        if self.transpose:
            return self.head(self.enc(h.transpose(0, 1)).transpose(0, 1).mean(1))
        return self.head(self.enc(h).mean(1))


class BareAttention(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.emb = nn.Embedding(V, D)
        self.att = nn.MultiheadAttention(D, 2)  # sequence-first
        self.head = nn.Linear(D, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.emb(x)
        a, _ = self.att(h, h, h)
        return self.head((h + a)[:, 0])


class Decoder(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.emb = nn.Embedding(V, D)
        self.dec = nn.TransformerDecoderLayer(D, 2, 32, dropout=0.0)
        self.head = nn.Linear(D, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.emb(x)
        return self.head(self.dec(h, h).mean(1))


def _loop(model: nn.Module, steps: int = 6) -> None:
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    for s in range(steps):
        i = (s * 32) % N
        loss = F.cross_entropy(model(X[i:i + 32]), Y[i:i + 32])
        opt.zero_grad()
        loss.backward()
        opt.step()


def _main_sgd(model: nn.Module) -> None:
    def main() -> None:
        opt = torch.optim.SGD(model.parameters(), lr=0.05)
        crit = nn.CrossEntropyLoss()
        for step, (xb, yb) in enumerate(DataLoader(TensorDataset(X, Y), batch_size=32, shuffle=True)):
            loss = crit(model(xb), yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
            if step == 5:
                break
    main()


BUGGY: list[tuple[str, Callable[[], None]]] = [
    ("encoder-adam", lambda: _loop(Encoder())),
    ("bare-mha-sgd-main", lambda: _main_sgd(BareAttention())),
    ("decoder-layer-loader", lambda: _main_sgd(Decoder())),
]


@pytest.mark.parametrize("name,fn", BUGGY, ids=[b[0] for b in BUGGY])
def test_batch_major_input_to_sequence_first_attention_is_caught(name: str, fn: Callable[[], None]) -> None:
    found = _findings(fn)
    assert len(found) == 1, name  # one finding for the whole stack
    assert found[0].evidence["input_shape"] == (32, T, D)


@pytest.mark.parametrize("name,fn", [
    ("batch-first", lambda: _loop(Encoder(batch_first=True))),
    ("transposed", lambda: _main_sgd(Encoder(transpose=True))),
], ids=["batch-first", "transposed"])
def test_consistent_layout_is_quiet(name: str, fn: Callable[[], None]) -> None:
    assert _findings(fn) == [], name


def test_per_position_targets_are_not_judged() -> None:
    """(N, T) targets laid out like the input: which axis is the batch is ambiguous, nothing is said."""
    class Tagger(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.emb, self.att, self.head = nn.Embedding(V, D), nn.MultiheadAttention(D, 2), nn.Linear(D, V)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            h = self.emb(x)
            return self.head(h + self.att(h, h, h)[0])

    def run() -> None:
        model = Tagger()
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        for s in range(6):
            out = model(X[s * 32:(s + 1) * 32])
            loss = F.cross_entropy(out.transpose(1, 2), X[s * 32:(s + 1) * 32])
            opt.zero_grad()
            loss.backward()
            opt.step()
    assert _findings(run) == []
