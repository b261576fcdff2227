"""shape.time-major-logits-flattened: (T, N, C) scores flattened against (N, T) targets.

Injected with an LSTM (Module, F.cross_entropy, Adam, targets sliced from the dataset matrix), a GRU
behind a DataLoader (nn.CrossEntropyLoss, SGD, main()) and a sequence-first TransformerEncoder with
log_softmax + NLL; the lookalikes that stay quiet transpose the scores back, flatten the targets
time-major, use batch_first=True, or train a time-major word language model end to end.
"""

from __future__ import annotations

from typing import Callable

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

from nndoctor.debug.time_major import TimeMajorFlattened
from nndoctor.monitor import Observer

CODE = "shape.time-major-logits-flattened"
V, TAGS, T, N = 20, 5, 10, 256
_G = torch.Generator().manual_seed(0)
X = torch.randint(0, V, (N, T), generator=_G)
Y = X % TAGS


def _findings(fn: Callable[[], None]) -> list:
    torch.manual_seed(0)
    with Observer(checks=[TimeMajorFlattened]) as obs:
        fn()
    assert not obs.internal_errors, obs.internal_errors
    return [f for f in obs.findings if f.code == CODE]


class Tagger(nn.Module):
    """Embedding -> sequence-first RNN or Transformer -> per-step scores, returned time-major
    (or batch-major with ``back=True`` / ``batch_first=True``)."""

    def __init__(self, kind: str = "lstm", back: bool = False, batch_first: bool = False,
                 log_probs: bool = False) -> None:
        super().__init__()
        self.kind, self.back, self.batch_first, self.log_probs = kind, back, batch_first, log_probs
        self.emb = nn.Embedding(V, 16)
        if kind == "lstm":
            self.seq: nn.Module = nn.LSTM(16, 16, batch_first=batch_first)
        elif kind == "gru":
            self.seq = nn.GRU(16, 16, batch_first=batch_first)
        else:
            self.seq = nn.TransformerEncoder(nn.TransformerEncoderLayer(16, 2, 32, dropout=0.0,
                                                                        batch_first=batch_first), 1,
                                             enable_nested_tensor=False)
        self.out = nn.Linear(16, TAGS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.emb(x)
        if not self.batch_first:
            h = h.transpose(0, 1)
        h = self.seq(h)
        h = h[0] if isinstance(h, tuple) else h
        if self.back and not self.batch_first:
            h = h.transpose(0, 1)
        out = self.out(h)
        return F.log_softmax(out, -1) if self.log_probs else out


def sliced_loop(model: nn.Module, flatten_targets: Callable[[torch.Tensor], torch.Tensor] = lambda y: y.reshape(-1),
                loss: str = "ce", steps: int = 6) -> None:
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for s in range(steps):
        i = (s * 32) % N
        out = model(X[i:i + 32])
        flat = out.reshape(-1, TAGS)
        target = flatten_targets(Y[i:i + 32])
        value = F.cross_entropy(flat, target) if loss == "ce" else F.nll_loss(flat, target)
        opt.zero_grad()
        value.backward()
        opt.step()


def loader_main(model: nn.Module) -> None:
    def main() -> None:
        opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        crit = nn.CrossEntropyLoss()
        for step, (xb, yb) in enumerate(DataLoader(TensorDataset(X, Y), batch_size=32, shuffle=True)):
            loss = crit(model(xb).view(-1, TAGS), yb.view(-1))
            opt.zero_grad()
            loss.backward()
            opt.step()
            if step == 5:
                break
    main()


BUGGY: list[tuple[str, Callable[[], None]]] = [
    ("lstm-sliced-adam", lambda: sliced_loop(Tagger("lstm"))),
    ("gru-loader-sgd-main", lambda: loader_main(Tagger("gru"))),
    ("transformer-nll", lambda: sliced_loop(Tagger("transformer", log_probs=True), loss="nll")),
]


@pytest.mark.parametrize("name,fn", BUGGY, ids=[b[0] for b in BUGGY])
def test_time_major_scores_against_batch_major_targets_are_caught(name: str, fn: Callable[[], None]) -> None:
    found = _findings(fn)
    assert len(found) == 1, name
    assert found[0].evidence["output_shape"] == (T, 32, TAGS)


HEALTHY: list[tuple[str, Callable[[], None]]] = [
    ("transposed-back", lambda: sliced_loop(Tagger("lstm", back=True))),
    ("batch-first", lambda: loader_main(Tagger("gru", batch_first=True))),
    ("targets-time-major-copy", lambda: sliced_loop(Tagger("lstm"), lambda y: y.t().reshape(-1))),
    ("targets-time-major-view", lambda: sliced_loop(Tagger("transformer"), lambda y: y.t().contiguous().view(-1))),
]


@pytest.mark.parametrize("name,fn", HEALTHY, ids=[h[0] for h in HEALTHY])
def test_consistent_layouts_are_quiet(name: str, fn: Callable[[], None]) -> None:
    assert _findings(fn) == [], name


def test_time_major_word_language_model_is_quiet() -> None:
    """PyTorch's word_language_model layout: a (L, N) corpus, (T, N) inputs, (T, N, V) outputs."""
    corpus = torch.randint(0, V, (400, 8), generator=_G)

    class LM(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.emb, self.rnn, self.out = nn.Embedding(V, 16), nn.LSTM(16, 16), nn.Linear(16, V)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.out(self.rnn(self.emb(x))[0])

    def run() -> None:
        model = LM()
        opt = torch.optim.SGD(model.parameters(), lr=0.5)
        for i in range(0, 6 * 12, 12):
            x, y = corpus[i:i + 12], corpus[i + 1:i + 13]
            loss = F.cross_entropy(model(x).view(-1, V), y.reshape(-1))
            opt.zero_grad()
            loss.backward()
            opt.step()
    assert _findings(run) == []
