"""data.padding-mask-inverted: attention masking the real tokens and attending to the padding.

The bug is injected in four styles (nn.TransformerEncoder's src_key_padding_mask, nn.MultiheadAttention's
key_padding_mask, F.scaled_dot_product_attention's True-means-attend attn_mask, a hand-written
masked_fill); the correct mask of each style, a causal + padding mask, left padding and unpadded
inputs stay quiet.
"""

from __future__ import annotations

import math
from typing import Callable

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from nndoctor.debug.attention_mask import InvertedPaddingMask, binary_float_keys, masked_keys
from nndoctor.monitor import Observer

CODE = "data.padding-mask-inverted"
V, T, N, D, PAD = 24, 12, 128, 16, 0
_G = torch.Generator().manual_seed(0)
LENGTHS = torch.randint(3, T, (N,), generator=_G)  # every row has some padding
POS = torch.arange(T)[None, :]
TOKENS = torch.randint(1, V, (N, T), generator=_G)
LABELS = (TOKENS[:, 0] > V // 2).long()


def padded(left: bool = False, lengths: torch.Tensor = LENGTHS) -> torch.Tensor:
    real = POS < lengths[:, None]
    real = real.flip(1) if left else real
    return torch.where(real, TOKENS, torch.full_like(TOKENS, PAD))


def _findings(fn: Callable[[], None]) -> list:
    torch.manual_seed(0)
    with Observer(checks=[InvertedPaddingMask]) as obs:
        fn()
    assert not obs.internal_errors, obs.internal_errors
    return [f for f in obs.findings if f.code == CODE]


def mask_for(x: torch.Tensor, style: str, inverted: bool) -> torch.Tensor:
    pad = x == PAD
    if style in ("encoder", "mha"):  # True = ignore
        return ~pad if inverted else pad
    return pad if inverted else ~pad  # sdpa / masked_fill: True = attend ("keep")


class EncoderClassifier(nn.Module):
    def __init__(self, inverted: bool) -> None:
        super().__init__()
        self.inverted = inverted
        self.emb = nn.Embedding(V, D, padding_idx=PAD)
        layer = nn.TransformerEncoderLayer(D, 2, 32, dropout=0.0, batch_first=True)
        self.enc = nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)
        self.head = nn.Linear(D, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.enc(self.emb(x), src_key_padding_mask=mask_for(x, "encoder", self.inverted))
        return self.head(h[:, 0])


class MHAClassifier(nn.Module):
    def __init__(self, inverted: bool) -> None:
        super().__init__()
        self.inverted = inverted
        self.emb = nn.Embedding(V, D)  # no padding_idx: the pad is found as a trailing run
        self.att = nn.MultiheadAttention(D, 2)  # sequence-first
        self.head = nn.Linear(D, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.emb(x).transpose(0, 1)
        a, _ = self.att(h, h, h, key_padding_mask=mask_for(x, "mha", self.inverted))
        return self.head((h + a)[0])


class HandAttention(nn.Module):
    """Single-head attention written by hand: SDPA or masked_fill, optionally causal too."""

    def __init__(self, style: str, inverted: bool, causal: bool = False) -> None:
        super().__init__()
        self.style, self.inverted, self.causal = style, inverted, causal
        self.emb = nn.Embedding(V, D, padding_idx=PAD)
        self.qkv = nn.Linear(D, 3 * D)
        self.head = nn.Linear(D, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.emb(x)
        q, k, v = self.qkv(h).chunk(3, dim=-1)
        keep = mask_for(x, self.style, self.inverted)[:, None, :]  # (N, 1, T)
        if self.causal:
            keep = keep & torch.tril(torch.ones(T, T, dtype=torch.bool))[None]
        if self.style == "sdpa":
            a = F.scaled_dot_product_attention(q[:, None], k[:, None], v[:, None], attn_mask=keep[:, None])[:, 0]
        else:
            scores = q @ k.transpose(1, 2) / math.sqrt(D)
            scores = scores.masked_fill(keep == 0, -1e9)
            a = scores.softmax(-1) @ v
        return self.head((h + a)[:, 0])


def _train(model: nn.Module, x: torch.Tensor, opt_name: str = "adam", module_loss: bool = False,
           steps: int = 8) -> None:
    opt = (torch.optim.Adam(model.parameters(), lr=1e-3) if opt_name == "adam"
           else torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9))
    crit = nn.CrossEntropyLoss()
    for s in range(steps):
        i = (s * 16) % N
        out = model(x[i:i + 16])
        loss = crit(out, LABELS[i:i + 16]) if module_loss else F.cross_entropy(out, LABELS[i:i + 16])
        opt.zero_grad()
        loss.backward()
        opt.step()


STYLES: list[tuple[str, Callable[[bool], nn.Module], str, bool]] = [
    ("encoder-adam-functional", lambda inv: EncoderClassifier(inv), "adam", False),
    ("mha-sgd-module-loss", lambda inv: MHAClassifier(inv), "sgd", True),
    ("sdpa-adam", lambda inv: HandAttention("sdpa", inv), "adam", True),
    ("masked-fill-sgd", lambda inv: HandAttention("fill", inv), "sgd", False),
]


@pytest.mark.parametrize("name,make,opt_name,module_loss", STYLES, ids=[s[0] for s in STYLES])
def test_inverted_mask_is_caught(name: str, make: Callable[[bool], nn.Module], opt_name: str,
                                 module_loss: bool) -> None:
    found = _findings(lambda: _train(make(True), padded(), opt_name, module_loss))
    assert len(found) == 1, name
    ev = found[0].evidence
    assert ev["hidden_real"] >= 0.9 and ev["attended_pad"] >= 0.9
    assert found[0].severity.value == "warning"


@pytest.mark.parametrize("name,make,opt_name,module_loss", STYLES, ids=[s[0] for s in STYLES])
def test_correct_mask_is_quiet(name: str, make: Callable[[bool], nn.Module], opt_name: str,
                               module_loss: bool) -> None:
    assert _findings(lambda: _train(make(False), padded(), opt_name, module_loss)) == [], name


def test_inverted_mask_in_main_with_left_padding_is_caught() -> None:
    def main() -> None:
        _train(HandAttention("sdpa", True), padded(left=True))
    assert len(_findings(main)) == 1


@pytest.mark.parametrize("style", ["sdpa", "fill"])
def test_causal_plus_padding_mask_is_quiet(style: str) -> None:
    assert _findings(lambda: _train(HandAttention(style, False, causal=True), padded())) == []


def test_left_padding_correct_mask_is_quiet() -> None:
    assert _findings(lambda: _train(EncoderClassifier(False), padded(left=True))) == []


def test_unpadded_inputs_are_not_judged() -> None:
    full = torch.full((N,), T)
    # no padding: an "inverted" mask would hide everything; nothing to compare with, so nothing is said
    assert _findings(lambda: _train(EncoderClassifier(False), padded(lengths=full))) == []


def test_masked_keys_reduces_over_queries() -> None:
    hidden = torch.zeros(2, 1, 3, 4, dtype=torch.bool)
    hidden[0, :, :, 3] = True  # a padded key: hidden from every query
    hidden[1, :, 0, 2] = True  # a causal-style entry: hidden from one query only
    assert masked_keys(hidden, 2, 4).tolist() == [[False, False, False, True], [False] * 4]
    assert masked_keys(hidden, 3, 4) is None


class FloatMaskEncoder(EncoderClassifier):
    """The padding mask handed over as 0/1 floats (added to the scores)."""

    def __init__(self, as_float: str) -> None:
        super().__init__(False)
        self.as_float = as_float

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pad = x == PAD
        mask = pad.float() if self.as_float == "pad" else pad.float().masked_fill(pad, float("-inf"))
        return self.head(self.enc(self.emb(x), src_key_padding_mask=mask)[:, 0])


class FloatSDPA(HandAttention):
    def __init__(self) -> None:
        super().__init__("sdpa", False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.emb(x)
        q, k, v = self.qkv(h).chunk(3, dim=-1)
        keep = (x != PAD).float()[:, None, None, :]  # Hugging Face-style 1 = real token, as floats
        a = F.scaled_dot_product_attention(q[:, None], k[:, None], v[:, None], attn_mask=keep)[:, 0]
        return self.head((h + a)[:, 0])


@pytest.mark.parametrize("make", [lambda: FloatMaskEncoder("pad"), FloatSDPA], ids=["encoder-pad-float", "sdpa-keep-float"])
def test_float_zero_one_mask_is_caught(make: Callable[[], nn.Module]) -> None:
    torch.manual_seed(0)
    with Observer(checks=[InvertedPaddingMask]) as obs:
        _train(make(), padded())
    assert not obs.internal_errors
    codes = [f.code for f in obs.findings]
    assert codes == ["data.padding-mask-as-float"]


def test_additive_minus_inf_float_mask_is_quiet() -> None:
    torch.manual_seed(0)
    with Observer(checks=[InvertedPaddingMask]) as obs:
        _train(FloatMaskEncoder("additive"), padded())
    assert not obs.internal_errors
    assert obs.findings == []


def test_binary_float_keys() -> None:
    m = torch.tensor([[0.0, 0.0, 1.0], [0.0, 1.0, 1.0]])
    assert binary_float_keys(m, 2, 3).tolist() == [[False, False, True], [False, True, True]]
    assert binary_float_keys(m * 2, 2, 3) is None  # not 0/1
    assert binary_float_keys(torch.zeros(2, 3), 2, 3) is None  # constant
    per_query = torch.zeros(2, 2, 3)
    per_query[:, 1, 2] = 1.0  # differs between queries: not a padding mask
    assert binary_float_keys(per_query, 2, 3) is None
