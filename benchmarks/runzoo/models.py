"""Models for zoo runs, in the styles real scripts use (Sequential and subclasses)."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch
import torch.nn as nn
import torch.nn.functional as F

if TYPE_CHECKING:
    from benchmarks.runzoo.config import Config
    from benchmarks.runzoo.data import Data

__all__ = ["ACTIVATIONS", "MODELS_FOR", "build_model"]

ACTIVATIONS = {
    "relu": nn.ReLU, "gelu": nn.GELU, "tanh": nn.Tanh, "leaky_relu": nn.LeakyReLU,
    "silu": nn.SiLU, "elu": nn.ELU, "sigmoid": nn.Sigmoid,
}

#: data kind -> model kinds that suit it
MODELS_FOR = {
    "blobs": ("mlp", "mlp_class"),
    "digits": ("mlp", "cnn"),
    "regression": ("mlp", "mlp_class"),
    "sequences": ("lstm", "gru", "rnn", "transformer"),
    "tokens": ("bigram", "mlp_lm", "gru_lm", "transformer_lm"),
    "autoencode": ("autoencoder",),
    "images": ("cnn", "mlp"),
}


def _mlp(d_in: int, d_out: int, depth: int, width: int, act: str, norm: str, dropout: float) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Flatten()]
    d = d_in
    for _ in range(depth):
        layers.append(nn.Linear(d, width))
        if norm == "bn":
            layers.append(nn.BatchNorm1d(width))
        elif norm == "ln":
            layers.append(nn.LayerNorm(width))
        layers.append(ACTIVATIONS[act]())
        if dropout:
            layers.append(nn.Dropout(dropout))
        d = width
    layers.append(nn.Linear(d, d_out))
    return nn.Sequential(*layers)


class MLPClass(nn.Module):
    """The same MLP written as a subclass with a functional activation."""

    def __init__(self, d_in: int, d_out: int, depth: int, width: int, act: str, dropout: float) -> None:
        super().__init__()
        dims = [d_in] + [width] * depth
        self.hidden = nn.ModuleList(nn.Linear(a, b) for a, b in zip(dims[:-1], dims[1:]))
        self.out = nn.Linear(dims[-1], d_out)
        self.act = getattr(F, act) if act != "tanh" else torch.tanh
        self.p = dropout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.flatten(1)
        for layer in self.hidden:
            x = F.dropout(self.act(layer(x)), self.p, self.training)
        return self.out(x)


class CNN(nn.Module):
    def __init__(self, side: int, classes: int, act: str, norm: str) -> None:
        super().__init__()
        bn = norm == "bn"
        self.features = nn.Sequential(
            nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8) if bn else nn.Identity(), ACTIVATIONS[act](),
            nn.Conv2d(8, 16, 3, padding=1), nn.BatchNorm2d(16) if bn else nn.Identity(), ACTIVATIONS[act](),
            nn.MaxPool2d(2),
        )
        self.head = nn.Linear(16 * (side // 2) ** 2, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x).flatten(1))


class RNNClassifier(nn.Module):
    def __init__(self, cell: str, features: int, hidden: int, classes: int) -> None:
        super().__init__()
        self.rnn = {"lstm": nn.LSTM, "gru": nn.GRU, "rnn": nn.RNN}[cell](features, hidden, batch_first=True)
        self.head = nn.Linear(hidden, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.rnn(x)
        return self.head(out[:, -1])


class TransformerClassifier(nn.Module):
    def __init__(self, features: int, classes: int, d: int, norm_first: bool) -> None:
        super().__init__()
        self.inp = nn.Linear(features, d)
        self.block = nn.TransformerEncoderLayer(d, 2, 2 * d, dropout=0.1, activation="gelu",
                                                batch_first=True, norm_first=norm_first)
        self.head = nn.Linear(d, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.block(self.inp(x)).mean(1))


class Bigram(nn.Module):
    """makemore's bigram: a logits table that starts at zero."""

    def __init__(self, vocab: int) -> None:
        super().__init__()
        self.logits = nn.Embedding(vocab, vocab)
        nn.init.zeros_(self.logits.weight)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        return self.logits(idx)


class MLPLM(nn.Module):
    """Bengio-style: embeddings of the previous tokens, a tanh hidden layer (makemore's mlp)."""

    def __init__(self, vocab: int, emb: int, hidden: int, context: int = 3) -> None:
        super().__init__()
        self.context = context
        self.emb = nn.Embedding(vocab + 1, emb)
        self.mlp = nn.Sequential(nn.Linear(context * emb, hidden), nn.Tanh(), nn.Linear(hidden, vocab))

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        b, t = idx.shape
        pad = torch.full((b, self.context), self.emb.num_embeddings - 1, dtype=idx.dtype)
        full = torch.cat([pad, idx], 1)
        windows = torch.stack([full[:, i:i + t] for i in range(self.context)], -1)  # (b, t, context)
        return self.mlp(self.emb(windows).flatten(2))


class GRULM(nn.Module):
    def __init__(self, vocab: int, emb: int, hidden: int) -> None:
        super().__init__()
        self.emb = nn.Embedding(vocab, emb)
        self.rnn = nn.GRU(emb, hidden, batch_first=True)
        self.head = nn.Linear(hidden, vocab)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        out, _ = self.rnn(self.emb(idx))
        return self.head(out)


class NewGELU(nn.Module):
    """minGPT's GELU approximation (tanh inside)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * torch.pow(x, 3.0))))


class Block(nn.Module):
    def __init__(self, d: int, heads: int, ctx: int) -> None:
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.attn = nn.MultiheadAttention(d, heads, batch_first=True)
        self.mlp = nn.Sequential(nn.Linear(d, 4 * d), NewGELU(), nn.Linear(4 * d, d))
        self.register_buffer("mask", torch.triu(torch.ones(ctx, ctx, dtype=torch.bool), 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t = x.shape[1]
        h = self.ln1(x)
        x = x + self.attn(h, h, h, attn_mask=self.mask[:t, :t], need_weights=False)[0]
        return x + self.mlp(self.ln2(x))


class TransformerLM(nn.Module):
    def __init__(self, vocab: int, d: int, ctx: int, layers: int) -> None:
        super().__init__()
        self.tok = nn.Embedding(vocab, d)
        self.pos = nn.Parameter(torch.zeros(1, ctx, d))
        self.blocks = nn.Sequential(*[Block(d, 2, ctx) for _ in range(layers)])
        self.ln = nn.LayerNorm(d)
        self.head = nn.Linear(d, vocab)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        x = self.tok(idx) + self.pos[:, : idx.shape[1]]
        return self.head(self.ln(self.blocks(x)))


class AutoEncoder(nn.Module):
    def __init__(self, d: int, bottleneck: int, act: str, sigmoid_out: bool) -> None:
        super().__init__()
        self.enc = nn.Sequential(nn.Linear(d, 32), ACTIVATIONS[act](), nn.Linear(32, bottleneck))
        self.dec = nn.Sequential(nn.Linear(bottleneck, 32), ACTIVATIONS[act](), nn.Linear(32, d))
        self.sigmoid_out = sigmoid_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.dec(self.enc(x))
        return torch.sigmoid(out) if self.sigmoid_out else out


def build_model(c: Config, d: Data) -> nn.Module:
    """The model config ``c`` names, for data ``d``."""
    out = d.n_classes or (d.in_features if d.task == "reconstruct" else 1)
    kind = c.model
    if kind == "mlp":
        return _mlp(d.in_features, out, c.depth, c.width, c.act, c.norm, c.dropout)
    if kind == "mlp_class":
        return MLPClass(d.in_features, out, c.depth, c.width, c.act, c.dropout)
    if kind == "cnn":
        return CNN(d.x_train.shape[-1], d.n_classes, c.act, c.norm)
    if kind in ("lstm", "gru", "rnn"):
        return RNNClassifier(kind, d.in_features, c.width, d.n_classes)
    if kind == "transformer":
        return TransformerClassifier(d.in_features, d.n_classes, 32, c.norm == "ln")
    if kind == "bigram":
        return Bigram(d.vocab)
    if kind == "mlp_lm":
        return MLPLM(d.vocab, 16, c.width)
    if kind == "gru_lm":
        return GRULM(d.vocab, 32, c.width)
    if kind == "transformer_lm":
        return TransformerLM(d.vocab, 32, d.seq_len, 2)
    if kind == "autoencoder":
        return AutoEncoder(d.in_features, 4, c.act, c.loss == "bce")
    raise ValueError(f"unknown model kind {kind!r}")
