"""activation.softmax-as-hidden-activation: a softmax over temperature-scaled cosine similarities to learned
prototypes / stored patterns (a modern Hopfield layer) is a retrieval distribution, not a hidden
activation; the same layers on raw dot products (a softmax hidden layer) still warn."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from nndoctor.monitor import Observer
from nndoctor.monitor.checks.softmax_hidden import SoftmaxHidden

CODE = "activation.softmax-as-hidden-activation"


class _Hopfield(nn.Module):
    """F.normalize on queries and stored patterns, fixed beta, retrieved values through nn.Linear."""

    def __init__(self, cosine: bool) -> None:
        super().__init__()
        self.q = nn.Linear(16, 32)
        self.memories = nn.Parameter(torch.randn(32, 32) / 32 ** 0.5)
        self.read = nn.Linear(32, 4)
        self.cosine = cosine

    def forward(self, x):
        q, k = self.q(x), self.memories
        if self.cosine:
            q, k = F.normalize(q, dim=-1), F.normalize(k, dim=-1)
        return self.read(torch.softmax(8.0 * q @ k.T if self.cosine else q @ k.T, -1))


class _Prototypes(nn.Module):
    """Hand-normalised prototypes with a learned temperature; the soft assignment times a value table."""

    def __init__(self, cosine: bool) -> None:
        super().__init__()
        self.embed = nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 24))
        self.protos = nn.Parameter(torch.randn(32, 24))
        self.values = nn.Parameter(torch.randn(32, 4) * 0.1)
        self.log_scale = nn.Parameter(torch.tensor(2.0))
        self.cosine = cosine

    def forward(self, x):
        z, p = self.embed(x), self.protos
        if self.cosine:
            z, p = z / z.norm(dim=1, keepdim=True), p / p.norm(dim=1, keepdim=True)
            return F.softmax(self.log_scale.exp() * (z @ p.t()), dim=1) @ self.values
        return F.softmax(z @ p.t() / 24 ** 0.5, dim=1) @ self.values


class _Sequence(nn.Module):
    """Batched (B, T, d) queries against stored patterns: a 3-D matmul, mean over the sequence."""

    def __init__(self, cosine: bool) -> None:
        super().__init__()
        self.q = nn.Linear(4, 32)
        self.patterns = nn.Parameter(torch.randn(32, 32))
        self.values = nn.Parameter(torch.randn(32, 4) * 0.1)
        self.cosine = cosine

    def forward(self, x):
        q = self.q(x.view(len(x), 4, 4))
        k = self.patterns
        if self.cosine:
            q, k = F.normalize(q, dim=-1), F.normalize(k, dim=-1)
            scores = 4.0 * torch.matmul(q, k.transpose(0, 1))
        else:
            scores = torch.matmul(q, k.transpose(0, 1)) / 32 ** 0.5
        return torch.matmul(scores.softmax(-1), self.values).mean(1)


_STYLES = {"hopfield": _Hopfield, "prototypes": _Prototypes, "sequence": _Sequence}


def _found(style: str, cosine: bool) -> list:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(256, 16, generator=g)
    y = x[:, :4].argmax(1)
    torch.manual_seed(0)
    model = _STYLES[style](cosine)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    with Observer(checks=[SoftmaxHidden]) as obs:
        for i in range(12):
            j = (i * 64) % 256
            loss = F.cross_entropy(model(x[j:j + 64]), y[j:j + 64])
            opt.zero_grad()
            loss.backward()
            opt.step()
    assert not obs.internal_errors, obs.internal_errors
    return [f for f in obs.findings if f.code == CODE]


@pytest.mark.parametrize("style", sorted(_STYLES))
def test_a_softmax_over_cosine_similarities_is_retrieval_not_a_hidden_activation(style):
    assert not _found(style, cosine=True)


@pytest.mark.parametrize("style", sorted(_STYLES))
def test_the_same_softmax_over_raw_dot_products_still_warns(style):
    assert _found(style, cosine=False)
