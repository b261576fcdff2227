"""data.future-tokens-visible: a next-token model whose outputs read later tokens (no causal mask,
bidirectional RNN) is caught in several styles; causal models of the same kinds stay quiet."""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from nndoctor.findings import Severity
from nndoctor.monitor import Observer
from nndoctor.monitor.checks.causal import FutureTokensVisible

V, T, B = 12, 10, 8
CODE = "data.future-tokens-visible"


def _batches(n: int):
    g = torch.Generator().manual_seed(0)
    data = torch.randint(0, V, (400,), generator=g)
    for _ in range(n):
        ix = torch.randint(0, len(data) - T - 1, (B,), generator=g)
        yield torch.stack([data[i:i + T] for i in ix]), torch.stack([data[i + 1:i + T + 1] for i in ix])


class TinyGPT(nn.Module):
    """Hand-written single-head attention; ``causal`` decides whether the future is masked."""

    def __init__(self, causal: bool) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.causal = causal
        self.emb = nn.Embedding(V, 16)
        self.pos = nn.Parameter(torch.zeros(T, 16))
        self.qkv = nn.Linear(16, 48)
        self.drop = nn.Dropout(0.1)
        self.head = nn.Linear(16, V)

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None):
        h = self.emb(idx) + self.pos[: idx.shape[1]]
        q, k, v = self.qkv(h).chunk(3, dim=-1)
        att = q @ k.transpose(1, 2) / math.sqrt(16)
        if self.causal:
            t = idx.shape[1]
            att = att.masked_fill(torch.triu(torch.ones(t, t, dtype=torch.bool), 1), float("-inf"))
        h = h + self.drop(att.softmax(-1)) @ v
        logits = self.head(h)
        loss = None if targets is None else F.cross_entropy(logits.reshape(-1, V), targets.reshape(-1))
        return logits, loss


def _encoder_lm(causal: bool) -> nn.Module:
    torch.manual_seed(0)

    class EncLM(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.emb = nn.Embedding(V, 16)
            self.block = nn.TransformerEncoderLayer(16, 2, 32, dropout=0.0, batch_first=True)
            self.head = nn.Linear(16, V)

        def forward(self, idx: torch.Tensor) -> torch.Tensor:
            mask = nn.Transformer.generate_square_subsequent_mask(idx.shape[1]) if causal else None
            return self.head(self.block(self.emb(idx), src_mask=mask, is_causal=causal))

    return EncLM()


class RnnLM(nn.Module):
    def __init__(self, bidirectional: bool) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.emb = nn.Embedding(V, 16)
        self.rnn = nn.GRU(16, 16, batch_first=True, bidirectional=bidirectional)
        self.head = nn.Linear(32 if bidirectional else 16, V)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        return self.head(self.rnn(self.emb(idx))[0])


def _train_plain(model: nn.Module, steps: int = 12) -> list:
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    with Observer(checks=[FutureTokensVisible]) as obs:
        for xb, yb in _batches(steps):
            logits = model(xb)
            loss = nn.CrossEntropyLoss()(logits.reshape(-1, V), yb.reshape(-1))
            opt.zero_grad()
            loss.backward()
            opt.step()
    assert not obs.internal_errors, obs.internal_errors
    return [f for f in obs.findings if f.severity is not Severity.INFO]


def _train_nanogpt(model: nn.Module, steps: int = 12) -> list:
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)

    def main():
        for xb, yb in _batches(steps):
            _, loss = model(xb, yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

    with Observer(checks=[FutureTokensVisible]) as obs:
        main()
    assert not obs.internal_errors, obs.internal_errors
    return [f for f in obs.findings if f.severity is not Severity.INFO]


# ---------------------------------------------------------------------------- bugs
def test_encoder_layer_without_mask_is_caught():
    found = _train_plain(_encoder_lm(causal=False))
    assert [f.code for f in found] == [CODE]
    f = found[0]
    assert f.severity is Severity.WARNING and f.evidence["shifted_share"] == 1.0
    assert f.evidence["max_change_earlier"] > 0 and "causal" in f.fixes[0]


def test_handwritten_attention_without_mask_nanogpt_style_is_caught():
    model = TinyGPT(causal=False)
    assert [f.code for f in _train_nanogpt(model)] == [CODE]
    assert model.training and model.drop.training  # train mode restored after the probe


def test_bidirectional_gru_lm_is_caught():
    assert [f.code for f in _train_plain(RnnLM(bidirectional=True))] == [CODE]


# ---------------------------------------------------------------------------- healthy
def test_causal_models_of_every_kind_are_quiet():
    assert _train_plain(_encoder_lm(causal=True)) == []
    assert _train_nanogpt(TinyGPT(causal=True)) == []
    assert _train_plain(RnnLM(bidirectional=False)) == []


def test_probe_leaves_the_rng_alone():
    torch.manual_seed(5)
    _train_nanogpt(TinyGPT(causal=False), steps=4)
    after_observed = torch.rand(3)
    torch.manual_seed(5)
    model = TinyGPT(causal=False)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    for xb, yb in _batches(4):
        _, loss = model(xb, yb)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    assert torch.equal(after_observed, torch.rand(3))


def test_bidirectional_tagger_whose_tags_are_not_the_next_tokens_is_quiet():
    model = RnnLM(bidirectional=True)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    with Observer(checks=[FutureTokensVisible]) as obs:
        for xb, _ in _batches(12):
            tags = (xb * 7 + 3) % V  # a per-token tagging task: bidirectional context is fine
            loss = F.cross_entropy(model(xb).reshape(-1, V), tags.reshape(-1))
            opt.zero_grad()
            loss.backward()
            opt.step()
    assert not obs.internal_errors
    assert [f for f in obs.findings if f.severity is not Severity.INFO] == []


class NoisyLM(RnnLM):
    """A causal LM that samples noise in forward even in eval mode (a latent-variable model)."""

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        h = self.rnn(self.emb(idx))[0]
        return self.head(h + 0.1 * torch.randn_like(h))


def test_a_causal_model_that_samples_in_forward_is_quiet():
    assert _train_plain(NoisyLM(bidirectional=False)) == []


def test_model_local_to_main_is_probed_while_alive():
    def main():  # the model is freed when main() returns, before the end of the run
        model = RnnLM(bidirectional=True)
        opt = torch.optim.SGD(model.parameters(), lr=0.5)
        for xb, yb in _batches(10):
            opt.zero_grad()
            F.cross_entropy(model(xb).transpose(1, 2), yb).backward()
            opt.step()

    with Observer(checks=[FutureTokensVisible]) as obs:
        main()
    assert not obs.internal_errors
    assert [f.code for f in obs.findings] == [CODE]


class StatefulLM(RnnLM):
    """Keeps state across forwards the way real scripts do: the last hidden state in an attribute
    (batch-sized), a call counter, and a running statistic in a buffer updated in place."""

    def __init__(self) -> None:
        super().__init__(bidirectional=True)
        self.register_buffer("seen", torch.zeros(()))
        self.calls = 0

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        self.seen += idx.shape[0]
        out, h = self.rnn(self.emb(idx))
        self.last_hidden = h.detach()
        return self.head(out)


def _stateful_run(watch: bool) -> tuple[list, StatefulLM, list]:
    model = StatefulLM()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    obs = Observer(checks=[FutureTokensVisible]) if watch else None
    losses = []
    if obs is not None:
        obs.__enter__()
    try:
        for xb, yb in _batches(12):
            loss = F.cross_entropy(model(xb).reshape(-1, V), yb.reshape(-1))
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(float(loss.detach()))
    finally:
        if obs is not None:
            obs.__exit__(None, None, None)
    found = [f.code for f in obs.findings] if obs is not None else []
    return losses, model, found


def test_the_probe_leaves_a_stateful_model_as_the_script_left_it():
    plain_losses, plain, _ = _stateful_run(watch=False)
    losses, model, found = _stateful_run(watch=True)
    assert CODE in found  # the probe ran (a bidirectional LM)
    assert losses == plain_losses
    assert model.calls == plain.calls == 12 and float(model.seen) == float(plain.seen) == 12 * B
    assert torch.equal(model.last_hidden, plain.last_hidden) and model.last_hidden.shape[1] == B
    assert model.training and all(m.training for m in model.modules())


# ------------------------------------------------ a decoder fed the targets unshifted (teacher forcing without the shift)
COPY = "data.target-in-inputs"
BOS = 1


def _pairs(n: int, seed: int = 0):
    """(source, target) sequences: the target is the source reversed (tokens 2..V-1)."""
    g = torch.Generator().manual_seed(seed)
    for _ in range(n):
        src = torch.randint(2, V, (B, T), generator=g)
        yield src, src.flip(1)


class _TfSeq2Seq(nn.Module):
    """nn.Transformer encoder-decoder with a causal target mask; ``shift_inside``: it shifts its decoder input itself."""

    def __init__(self, shift_inside: bool = False) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.shift_inside = shift_inside
        self.emb = nn.Embedding(V, 16)
        self.tf = nn.Transformer(16, 2, 1, 1, 32, dropout=0.0, batch_first=True)
        self.head = nn.Linear(16, V)

    def forward(self, src: torch.Tensor, tgt: torch.Tensor) -> torch.Tensor:
        if self.shift_inside:
            tgt = torch.cat([torch.full_like(tgt[:, :1], BOS), tgt[:, :-1]], dim=1)
        mask = nn.Transformer.generate_square_subsequent_mask(tgt.shape[1])
        return self.head(self.tf(self.emb(src), self.emb(tgt), tgt_mask=mask))


class _GruSeq2Seq(nn.Module):
    """A GRU encoder whose last state starts a GRU decoder run over the given decoder tokens."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.emb = nn.Embedding(V, 16)
        self.enc = nn.GRU(16, 16, batch_first=True)
        self.dec = nn.GRU(16, 16, batch_first=True)
        self.head = nn.Linear(16, V)

    def forward(self, src: torch.Tensor, dec_in: torch.Tensor) -> torch.Tensor:
        _, h = self.enc(self.emb(src))
        return self.head(self.dec(self.emb(dec_in), h)[0])


def _train_seq2seq(model: nn.Module, decoder_input, steps: int = 12, flat: bool = True) -> list:
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    with Observer(checks=[FutureTokensVisible]) as obs:
        for src, tgt in _pairs(steps):
            logits = model(src, decoder_input(tgt))
            loss = F.cross_entropy(logits.reshape(-1, V), tgt.reshape(-1)) if flat else \
                F.cross_entropy(logits.transpose(1, 2), tgt)
            opt.zero_grad()
            loss.backward()
            opt.step()
    return obs.findings


def _unshifted(tgt: torch.Tensor) -> torch.Tensor:
    return tgt


def _shifted(tgt: torch.Tensor) -> torch.Tensor:
    return torch.cat([torch.full_like(tgt[:, :1], BOS), tgt[:, :-1]], dim=1)


def test_transformer_decoder_fed_the_targets_unshifted_is_caught():
    found = [f for f in _train_seq2seq(_TfSeq2Seq(), _unshifted) if f.code == COPY]
    assert found and found[0].severity == Severity.WARNING and found[0].evidence["argument"] == 2


def test_gru_decoder_fed_the_targets_unshifted_is_caught_with_a_class_dim_loss():
    assert COPY in {f.code for f in _train_seq2seq(_GruSeq2Seq(), lambda t: t.clone(), flat=False)}


def test_decoder_fed_the_targets_through_a_step_loop_is_caught():
    """Teacher forcing written as a loop over time steps, the decoder token at t being the target at t."""
    class LoopDecoder(_GruSeq2Seq):
        def forward(self, src: torch.Tensor, dec_in: torch.Tensor) -> torch.Tensor:
            _, h = self.enc(self.emb(src))
            cell_in, outs = self.emb(dec_in), []
            for t in range(dec_in.shape[1]):
                o, h = self.dec(cell_in[:, t:t + 1], h)
                outs.append(self.head(o))
            return torch.cat(outs, dim=1)

    assert COPY in {f.code for f in _train_seq2seq(LoopDecoder(), _unshifted)}


def test_shifted_decoder_inputs_are_quiet():
    for model in (_TfSeq2Seq(), _GruSeq2Seq()):
        assert not _train_seq2seq(model, _shifted)


def test_a_decoder_that_shifts_its_input_itself_is_quiet():
    """model(src, tgt) compared with tgt itself: the model reads tokens before t only (probed), no leak."""
    assert not _train_seq2seq(_TfSeq2Seq(shift_inside=True), _unshifted)
