"""Data for zoo runs: every kind generated or shipped in a package, never downloaded.

Each generator returns a :class:`Data` with training and evaluation tensors already in the
form a healthy script would feed the model (standardised features, class ids as int64,
regression targets shaped like the model's output).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

__all__ = ["DATA_KINDS", "Data", "make_data"]


@dataclass
class Data:
    kind: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_eval: torch.Tensor
    y_eval: torch.Tensor
    n_classes: int = 0          # 0: regression / reconstruction
    vocab: int = 0              # token data: vocabulary size
    in_features: int = 0        # tabular / sequence feature count
    seq_len: int = 0

    @property
    def task(self) -> str:
        if self.kind == "tokens":
            return "lm"
        if self.kind == "autoencode":
            return "reconstruct"
        return "classify" if self.n_classes else "regress"


def _split(x: torch.Tensor, y: torch.Tensor, frac: float = 0.8) -> tuple[torch.Tensor, ...]:
    n = int(len(x) * frac)
    return x[:n], y[:n], x[n:], y[n:]


def _standardise(train: torch.Tensor, other: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    mean, std = train.mean(0, keepdim=True), train.std(0, keepdim=True).clamp_min(1e-6)
    return (train - mean) / std, (other - mean) / std


def _blobs(g: torch.Generator, rng: np.random.Generator) -> Data:
    classes = int(rng.choice([2, 3, 5, 10]))
    d = int(rng.choice([8, 16, 32]))
    n = int(rng.choice([512, 1024, 2048]))
    centers = torch.randn(classes, d, generator=g) * float(rng.uniform(1.0, 2.0))
    y = torch.randint(0, classes, (n,), generator=g)
    x = centers[y] + torch.randn(n, d, generator=g)
    xt, yt, xe, ye = _split(x, y)
    xt, xe = _standardise(xt, xe)
    return Data("blobs", xt, yt, xe, ye, n_classes=classes, in_features=d)


def _digits(g: torch.Generator, rng: np.random.Generator) -> Data:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    perm = torch.randperm(len(bunch.target), generator=g)
    x = torch.tensor(bunch.data, dtype=torch.float32)[perm] / 16.0
    y = torch.tensor(bunch.target, dtype=torch.long)[perm]
    xt, yt, xe, ye = _split(x, y)
    if rng.random() < 0.5:  # standardised rather than [0, 1]
        mean, std = xt.mean(), xt.std()
        xt, xe = (xt - mean) / std, (xe - mean) / std
    return Data("digits", xt.reshape(-1, 1, 8, 8), yt, xe.reshape(-1, 1, 8, 8), ye, n_classes=10, in_features=64)


def _regression(g: torch.Generator, rng: np.random.Generator) -> Data:
    d = int(rng.choice([1, 4, 8, 16]))
    n = int(rng.choice([512, 1024, 2048]))
    x = torch.rand(n, d, generator=g) * 4 - 2
    w = torch.randn(d, generator=g)
    y = torch.sin(x @ w) + 0.3 * (x ** 2).mean(1) + 0.05 * torch.randn(n, generator=g)
    xt, yt, xe, ye = _split(x, y.unsqueeze(1))
    mean, std = yt.mean(), yt.std()
    return Data("regression", xt, (yt - mean) / std, xe, (ye - mean) / std, in_features=d)


def _sequences(g: torch.Generator, rng: np.random.Generator) -> Data:
    n = int(rng.choice([512, 1024]))
    t, f = int(rng.choice([8, 12, 20])), int(rng.choice([2, 4]))
    x = torch.randn(n, t, f, generator=g)
    y = (x[:, :, 0].sum(1) > 0).long()
    xt, yt, xe, ye = _split(x, y)
    return Data("sequences", xt, yt, xe, ye, n_classes=2, in_features=f, seq_len=t)


def _tokens(g: torch.Generator, rng: np.random.Generator) -> Data:
    """A Markov chain over a Zipfian vocabulary: next-token prediction has real structure."""
    vocab = int(rng.choice([27, 65, 300, 1000]))
    ctx = int(rng.choice([8, 16]))
    n_seq = int(rng.choice([256, 512]))
    ranks = np.arange(1, vocab + 1, dtype=np.float64)
    base = 1.0 / ranks ** 1.1
    # each token prefers a few successors: a sparse transition structure on top of Zipf
    trans = np.tile(base, (vocab, 1))
    for tok in range(vocab):
        succ = rng.choice(vocab, size=3, replace=False)
        trans[tok, succ] += base.sum() * rng.uniform(0.5, 2.0, size=3)
    trans /= trans.sum(1, keepdims=True)
    seqs = np.empty((n_seq, ctx + 1), dtype=np.int64)
    state = rng.choice(vocab, size=n_seq, p=base / base.sum())
    cum = trans.cumsum(1)
    for i in range(ctx + 1):
        seqs[:, i] = state
        u = rng.random(n_seq)[:, None]
        state = np.minimum((u > cum[state]).sum(1), vocab - 1)
    t = torch.from_numpy(seqs)
    xt, yt, xe, ye = _split(t[:, :-1], t[:, 1:])
    return Data("tokens", xt, yt, xe, ye, vocab=vocab, seq_len=ctx)


def _autoencode(g: torch.Generator, rng: np.random.Generator) -> Data:
    d = int(rng.choice([16, 32]))
    n = 1024
    latent = torch.randn(n, 4, generator=g)
    mix = torch.randn(4, d, generator=g)
    x = torch.sigmoid(latent @ mix + 0.1 * torch.randn(n, d, generator=g))  # in (0, 1)
    xt, _, xe, _ = _split(x, x)
    return Data("autoencode", xt, xt.clone(), xe, xe.clone(), in_features=d)


def _images(g: torch.Generator, rng: np.random.Generator) -> Data:
    """16x16 single-channel stripes of 4 orientations plus noise."""
    n = 1024
    y = torch.randint(0, 4, (n,), generator=g)
    ii, jj = torch.meshgrid(torch.arange(16.0), torch.arange(16.0), indexing="ij")
    pats = torch.stack([torch.sin(ii), torch.sin(jj), torch.sin(ii + jj), torch.sin(ii - jj)])
    x = pats[y].unsqueeze(1) + 0.8 * torch.randn(n, 1, 16, 16, generator=g)
    xt, yt, xe, ye = _split(x, y)
    return Data("images", xt, yt, xe, ye, n_classes=4, in_features=256)


_MAKERS = {
    "blobs": _blobs, "digits": _digits, "regression": _regression, "sequences": _sequences,
    "tokens": _tokens, "autoencode": _autoencode, "images": _images,
}
DATA_KINDS = tuple(_MAKERS)


def make_data(kind: str, seed: int) -> Data:
    """The data of kind ``kind``, the same for the same seed."""
    if kind not in _MAKERS:
        raise ValueError(f"unknown data kind {kind!r}; known: {', '.join(DATA_KINDS)}")
    g = torch.Generator().manual_seed(seed)
    rng = np.random.default_rng(seed)
    return _MAKERS[kind](g, rng)
