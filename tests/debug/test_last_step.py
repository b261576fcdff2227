"""data.last-step-of-padded: right-padded sequences classified from their last (padded) step.

Injected in five styles (LSTM out[:, -1, :] over tokens with padding_idx, GRU h_n[-1] over tokens
padded with an unnamed trailing token, a transformer encoder's out.select(1, -1), an RNN over
zero-padded float steps read at out[:, T - 1], a time-major LSTM's h.squeeze(0)); packed sequences,
left padding, equal lengths, a gather at lengths - 1, masked mean pooling, a CLS position and a
per-token language model stay quiet.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from nndoctor.debug.last_step import LastStepOfPadded, last_index_dim, right_padding
from nndoctor.monitor import Observer

CODE = "data.last-step-of-padded"
V, T, N, D, PAD = 20, 10, 64, 16, 0
_G = torch.Generator().manual_seed(0)
LENGTHS = torch.randint(3, T + 1, (N,), generator=_G)
LENGTHS[0] = T
POS = torch.arange(T)[None, :]
TOKENS = torch.randint(1, V, (N, T), generator=_G)
LABELS = (TOKENS[:, 0] > V // 2).long()


def padded(left: bool = False, equal: bool = False, pad: int = PAD) -> torch.Tensor:
    lengths = torch.full_like(LENGTHS, T) if equal else LENGTHS
    real = POS < lengths[:, None]
    real = real.flip(1) if left else real
    return torch.where(real, TOKENS, torch.full_like(TOKENS, pad))


def zero_padded() -> torch.Tensor:
    x = torch.randn(N, T, 3, generator=torch.Generator().manual_seed(1))
    return x * (POS < LENGTHS[:, None])[..., None]


class Recurrent(nn.Module):
    def __init__(self, style: str) -> None:
        super().__init__()
        self.style = style
        self.emb = nn.Embedding(V + 1, D, padding_idx=PAD if style != "gru_hn" else None)
        self.inp = nn.Linear(3, D)
        cell = nn.GRU if style in ("gru_hn",) else nn.LSTM
        self.rnn = cell(D, D, batch_first=style != "time_major")
        layer = nn.TransformerEncoderLayer(D, 2, 32, dropout=0.0, batch_first=True)
        self.enc = nn.TransformerEncoder(layer, 1, enable_nested_tensor=False)
        self.head = nn.Linear(D, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.style
        if s == "lstm_out":
            out, _ = self.rnn(self.emb(x))
            return self.head(out[:, -1, :])
        if s == "gru_hn":
            _, h = self.rnn(self.emb(x))
            return self.head(F.dropout(h[-1], 0.1, self.training))
        if s == "transformer":
            out = self.enc(self.emb(x), src_key_padding_mask=x == PAD)
            return self.head(out.select(1, -1))
        if s == "zeros":
            out, _ = self.rnn(torch.tanh(self.inp(x)))
            return self.head(out[:, x.shape[1] - 1])
        if s == "time_major":
            _, (h, _) = self.rnn(self.emb(x).transpose(0, 1))
            return self.head(h.squeeze(0))
        e = self.emb(x)
        lengths = (x != PAD).sum(1)
        if s == "packed":
            packed = nn.utils.rnn.pack_padded_sequence(e, lengths, batch_first=True, enforce_sorted=False)
            _, (h, _) = self.rnn(packed)
            return self.head(h[-1])
        if s == "gather":
            out, _ = self.rnn(e)
            return self.head(out[torch.arange(len(x)), lengths - 1])
        if s == "mean":
            out, _ = self.rnn(e)
            m = (x != PAD).float()[..., None]
            return self.head((out * m).sum(1) / m.sum(1))
        if s == "cls":
            out = self.enc(e, src_key_padding_mask=x == PAD)
            return self.head(out[:, 0])
        out, _ = self.rnn(e)  # "last" on left padding / equal lengths
        return self.head(out[:, -1])


def _run(style: str, x: torch.Tensor, steps: int = 4) -> list:
    torch.manual_seed(0)
    model = Recurrent(style)
    opt = torch.optim.Adam(model.parameters(), 1e-3)
    with Observer(checks=[LastStepOfPadded]) as obs:
        for _ in range(steps):
            opt.zero_grad()
            loss = F.cross_entropy(model(x), LABELS)
            loss.backward()
            opt.step()
    assert not obs.internal_errors, obs.internal_errors
    return [f for f in obs.findings if f.code == CODE]


@pytest.mark.parametrize("style,x", [
    ("lstm_out", padded()), ("gru_hn", padded(pad=V)), ("transformer", padded()),
    ("zeros", zero_padded()), ("time_major", padded()),
])
def test_last_step_of_right_padded_is_named(style: str, x: torch.Tensor) -> None:
    found = _run(style, x)
    assert len(found) == 1, style
    f = found[0]
    assert f.severity.value == "warning"
    assert f.evidence["rows"] >= 0.5 and f.evidence["steps"] >= 2
    assert "padded on the right" in f.message


@pytest.mark.parametrize("style,x", [
    ("packed", padded()), ("gather", padded()), ("mean", padded()), ("cls", padded()),
    ("last", padded(left=True)), ("last", padded(equal=True)),
])
def test_healthy_lookalikes_are_quiet(style: str, x: torch.Tensor) -> None:
    assert _run(style, x) == []


def test_language_model_per_token_loss_is_quiet() -> None:
    torch.manual_seed(0)
    emb, rnn, head = nn.Embedding(V + 1, D, padding_idx=PAD), nn.LSTM(D, D, batch_first=True), nn.Linear(D, V + 1)
    model = nn.ModuleList([emb, rnn, head])
    x = padded()
    with Observer(checks=[LastStepOfPadded]) as obs:
        for _ in range(3):
            model.zero_grad()
            out, _ = rnn(emb(x))
            last = out[:, -1]  # (a read of the last step, but the loss is per token)
            logits = head(out)
            loss = F.cross_entropy(logits.reshape(-1, V + 1), x.reshape(-1), ignore_index=PAD) + 0 * last.sum()
            loss.backward()
    assert [f for f in obs.findings if f.code == CODE] == []


def test_right_padding_and_index_parsing() -> None:
    assert right_padding(padded(), [PAD]) is not None
    assert right_padding(padded(left=True), [PAD]) is None
    assert right_padding(padded(equal=True), [PAD]) is None
    assert right_padding(torch.randn(N, T, 3), []) is None
    dense = torch.randn(N, T, 3).round()  # exact zeros everywhere: trailing zeros are no evidence
    assert right_padding(dense * (POS < LENGTHS[:, None])[..., None], []) is None
    shape = (N, T, D)
    assert last_index_dim("getitem", (None, (slice(None), -1)), shape) == 1
    assert last_index_dim("getitem", (None, (slice(None), T - 1, slice(None))), shape) == 1
    assert last_index_dim("getitem", (None, (slice(None), slice(-1, None))), shape) == 1
    assert last_index_dim("getitem", (None, -1), shape) == 0
    assert last_index_dim("getitem", (None, (slice(None), 0)), shape) is None
    assert last_index_dim("getitem", (None, (slice(None), -1, 0)), shape) is None
    assert last_index_dim("getitem", (None, (torch.arange(N), torch.zeros(N, dtype=torch.long))), shape) is None
    assert last_index_dim("select", (None, 1, -1), shape) == 1
    assert last_index_dim("narrow", (None, 1, T - 1, 1), shape) == 1
