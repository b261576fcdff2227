"""regularization: weight decay that dominates the update, dropout too strong to learn."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from nndoctor.monitor import Observer
from nndoctor.monitor.checks.regularization import DropoutTooStrong, WeightDecayDominates


def _data(n=1024, d=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=g)
    return x, (x[:, :5] @ torch.arange(1.0, 6.0)).gt(0).long() + 2 * (x[:, 5] > 0).long()


def _mlp(p=0.0):
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(32, 128), nn.ReLU(), nn.Dropout(p), nn.Linear(128, 64), nn.ReLU(),
                         nn.Dropout(p), nn.Linear(64, 4))


def _run(model, make, steps=40, checks=(WeightDecayDominates, DropoutTooStrong), evaluate=False):
    x, y = _data()
    with Observer(checks=list(checks)) as obs:
        opt = make(model.parameters())
        for i in range(steps):
            j = (i * 64) % len(x)
            model.train()
            opt.zero_grad()
            F.cross_entropy(model(x[j:j + 64]), y[j:j + 64]).backward()
            opt.step()
            if evaluate and i % 10 == 9:
                model.eval()
                with torch.no_grad():
                    F.cross_entropy(model(x[:256]), y[:256])
    return obs.findings


@pytest.mark.parametrize("make", [
    lambda p: torch.optim.SGD(p, 0.1, momentum=0.9, weight_decay=0.1),
    lambda p: torch.optim.Adam(p, 1e-3, weight_decay=0.1),
    lambda p: torch.optim.AdamW(p, 1e-3, weight_decay=50.0),
], ids=["sgd-l2", "adam-l2", "adamw-decoupled"])
def test_dominating_weight_decay(make):
    found = _run(_mlp(), make)
    assert [f.code for f in found] == ["regularization.weight-decay-too-strong"]
    ev = found[0].evidence
    assert ev["ratio"] >= 0.5 and len(ev["steps"]) >= 3
    assert found[0].location == "opt"


@pytest.mark.parametrize("make", [
    lambda p: torch.optim.SGD(p, 0.1, momentum=0.9, weight_decay=5e-4),
    lambda p: torch.optim.SGD(p, 0.05, weight_decay=5e-3),
    lambda p: torch.optim.Adam(p, 1e-3, weight_decay=1e-4),
    lambda p: torch.optim.AdamW(p, 1e-3, weight_decay=0.01),
    lambda p: torch.optim.AdamW(p, 3e-4, weight_decay=0.1),
], ids=["sgd-5e-4", "sgd-5e-3", "adam-1e-4", "adamw-0.01", "adamw-0.1"])
def test_usual_weight_decay_is_quiet(make):
    assert not _run(_mlp(), make)


class _GRULM(nn.Module):
    def __init__(self, vocab=1000, d=32):
        super().__init__()
        self.emb, self.rnn, self.out = nn.Embedding(vocab, d), nn.GRU(d, d, batch_first=True), nn.Linear(d, vocab)

    def forward(self, x):
        return self.out(self.rnn(self.emb(x))[0])


def _token_stream(n=20000, seed=1):
    g = torch.Generator().manual_seed(seed)
    noise = torch.randint(0, 3, (n,), generator=g)
    seq = [1]
    for i in range(1, n):
        seq.append((seq[-1] * 7 + 3 + int(noise[i])) % 200)
    return torch.tensor(seq)


def test_l2_on_an_embedding_whose_unused_rows_get_no_gradient_is_quiet():
    """A language model under coupled L2 (zoo seed 7053): measured over the whole embedding, wd*|w|
    is about the gradient at every dense step (most rows get no gradient in a batch), and the loss
    keeps falling; over the entries the batch trains, the decay is below the gradient."""
    torch.manual_seed(0)
    model, seq = _GRULM(), _token_stream()
    with Observer(checks=[WeightDecayDominates]) as obs:
        opt = torch.optim.Adam(model.parameters(), lr=8e-3, weight_decay=1.5e-3)
        for i in range(30):
            j = i * 64 * 9 % (len(seq) - 700)
            x, y = seq[j:j + 512].view(64, 8), seq[j + 1:j + 513].view(64, 8)
            opt.zero_grad()
            F.cross_entropy(model(x).reshape(-1, 1000), y.reshape(-1)).backward()
            opt.step()
            if i == 0:  # over every entry the decay rivals the gradient
                w = torch.cat([p.detach().flatten() for p in model.parameters()]).norm()
                g = torch.cat([p.grad.flatten() for p in model.parameters()]).norm()
                assert 1.5e-3 * float(w) / float(g) >= 1.0
    _, losses = obs.state.losses.series()
    assert losses[-1] < 0.85 * losses[0]
    assert not obs.findings


def _flat_loss_run(make, steps=40):
    """Random labels on fresh data every step: nothing to learn, the loss stays at chance."""
    torch.manual_seed(0)
    model = _mlp()
    g = torch.Generator().manual_seed(3)
    with Observer(checks=[WeightDecayDominates]) as obs:
        opt = make(model.parameters())
        for _ in range(steps):
            x, y = torch.randn(64, 32, generator=g), torch.randint(0, 4, (64,), generator=g)
            opt.zero_grad()
            F.cross_entropy(model(x), y).backward()
            opt.step()
    return obs.findings


def test_decay_about_the_gradient_needs_the_loss_held_back():
    """wd*|w| ~ |g| (above it at some sampled steps only): quiet while the loss falls well, reported
    when the loss does not come down."""
    make = lambda p: torch.optim.SGD(p, 0.1, momentum=0.9, weight_decay=0.05)  # noqa: E731
    assert not _run(_mlp(), make)  # the loss falls from 1.4 to ~0.4 in 40 steps
    found = _flat_loss_run(make)
    assert [f.code for f in found] == ["regularization.weight-decay-too-strong"]
    assert found[0].evidence["loss_trend_z"] > -3.0


def test_only_the_decayed_group_is_reported():
    model = _mlp()
    decay = [p for p in model.parameters() if p.dim() > 1]
    no_decay = [p for p in model.parameters() if p.dim() == 1]
    found = _run(model, lambda _: torch.optim.SGD(
        [{"params": no_decay, "weight_decay": 0.0}, {"params": decay, "weight_decay": 0.2}], lr=0.05))
    assert [f.location for f in found] == ["opt.param_groups[1]"]


def test_dropout_modules_with_keep_probability():
    found = _run(_mlp(0.9), lambda p: torch.optim.Adam(p, 1e-3), steps=10)
    assert sorted(f.location for f in found) == ["model.2", "model.5"]
    assert all(f.code == "regularization.dropout-too-strong" for f in found)
    assert "nn.Dropout model.2" in found[0].message or "nn.Dropout model.5" in found[0].message
    assert "10%" in found[0].fixes[0]


class FunctionalDropout(nn.Module):
    def __init__(self, p):
        super().__init__()
        self.fc1 = nn.Linear(32, 128)
        self.fc2 = nn.Linear(128, 4)
        self.p = p

    def forward(self, x):
        return self.fc2(F.dropout(F.relu(self.fc1(x)), p=self.p, training=self.training))


def test_functional_dropout_in_forward():
    found = _run(FunctionalDropout(0.85), lambda p: torch.optim.SGD(p, 0.05), steps=10, evaluate=True)
    assert [(f.code, f.location) for f in found] == [("regularization.dropout-too-strong", "model")]
    assert "F.dropout in model.forward" in found[0].message


def test_moderate_dropout_needs_a_stuck_loss():
    stuck = _run(_mlp(0.75), lambda p: torch.optim.SGD(p, 1e-4), steps=40)
    assert [f.code for f in stuck] == ["regularization.dropout-too-strong", "regularization.dropout-too-strong"]
    assert stuck[0].evidence["loss_ratio"] >= 0.8
    learning = _run(_mlp(0.75), lambda p: torch.optim.Adam(p, 3e-3), steps=80)
    assert not learning


def test_usual_dropout_and_evaluation_only_dropout_are_quiet():
    assert not _run(_mlp(0.5), lambda p: torch.optim.Adam(p, 1e-3), steps=20)
    model = FunctionalDropout(0.9)
    x, y = _data()
    with Observer(checks=[DropoutTooStrong]) as obs:
        opt = torch.optim.SGD(model.parameters(), lr=0.01)
        for _ in range(10):
            model.eval()
            with torch.no_grad():
                model(x[:64])
            opt.zero_grad()
            F.cross_entropy(model.fc2(F.relu(model.fc1(x[:64]))), y[:64]).backward()
            opt.step()
    assert not obs.findings
