"""grad-flow.non-differentiable-op: round/sign/argmax/comparisons in the forward stop the layers
before them from learning; straight-through estimators, accuracy argmax, frozen encoders, target
networks, GANs and embeddings stay quiet."""

from __future__ import annotations

import copy
from typing import Callable

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from nndoctor.debug.grad_cut import CutLog, upstream_params
from nndoctor.debug.grad_flow import GradFlow
from nndoctor.findings import Severity
from nndoctor.monitor import Observer

CODE = "grad-flow.non-differentiable-op"
G = torch.Generator().manual_seed(0)
X = torch.randn(160, 8, generator=G)
Y = torch.randint(0, 3, (160,), generator=G)


def _observe(fn: Callable[[], None]) -> list:
    torch.manual_seed(0)
    with Observer(checks=[GradFlow]) as obs:
        fn()
    assert not obs.internal_errors, obs.internal_errors
    return [f for f in obs.findings if f.severity is not Severity.INFO]


def _loop(model: nn.Module, opt: torch.optim.Optimizer, steps: int = 12) -> None:
    for i in range(steps):
        xb, yb = X[i * 8:i * 8 + 16], Y[i * 8:i * 8 + 16]
        opt.zero_grad()
        F.cross_entropy(model(xb), yb).backward()
        opt.step()


class Coded(nn.Module):
    """An encoder, a hard op, a head (subclass style)."""

    def __init__(self, hard: str) -> None:
        super().__init__()
        self.enc = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 12))
        self.head = nn.Linear(12, 3)
        self.hard = hard

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.enc(x)
        if self.hard == "round":
            h = torch.round(torch.sigmoid(h))
        elif self.hard == "sign":
            h = h.sign()
        elif self.hard == "floor":
            h = (h * 3).floor() / 3
        elif self.hard == "mask":
            h = (h > 0).float()
        elif self.hard == "argmax":
            h = F.one_hot(h.argmax(dim=1), 12).float()
        elif self.hard == "ste":
            s = torch.sigmoid(h)
            h = s + (torch.round(s) - s).detach()
        elif self.hard == "relu_mask":
            h = h * (h > 0).float()  # a hand-written ReLU: the mask multiplies a differentiable path
        return self.head(h)


class Binarize(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.round()


@pytest.mark.parametrize("hard,kind", [("round", "zero"), ("sign", "zero"), ("floor", "zero"),
                                       ("mask", "none"), ("argmax", "none")])
def test_hard_op_in_a_subclass_names_the_encoder_and_the_site(hard, kind):
    def run():
        model = Coded(hard)
        _loop(model, torch.optim.Adam(model.parameters(), lr=1e-2))

    hits = [f for f in _observe(run) if f.code == CODE]
    assert len(hits) == 1, hits
    f = hits[0]
    assert f.location == "model.enc" and f.severity is Severity.WARNING
    assert f.evidence["learning_modules"] == ["model.head"]
    assert "test_grad_cut.py:" in f.evidence["site"]
    assert f.evidence[f"{kind}_grad_params"] == 8 * 16 + 16 + 16 * 12 + 12


def test_round_module_in_a_sequential_with_sgd_top_level_loop():
    def run():
        model = nn.Sequential(nn.Linear(8, 16), nn.Sigmoid(), Binarize(), nn.Linear(16, 3))
        opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        for i in range(12):
            xb, yb = X[i * 8:i * 8 + 16], Y[i * 8:i * 8 + 16]
            loss = nn.CrossEntropyLoss()(model(xb), yb)
            opt.zero_grad()
            loss.backward()
            opt.step()

    f = next(f for f in _observe(run) if f.code == CODE)
    assert f.location == "model.0" and f.evidence["op"] == "torch.round"
    assert f.evidence["learning_modules"] == ["model.3"]


@pytest.mark.parametrize("hard", ["ste", "relu_mask"])
def test_straight_through_and_hand_written_relu_are_quiet(hard):
    def run():
        model = Coded(hard)
        _loop(model, torch.optim.Adam(model.parameters(), lr=1e-2))

    assert _observe(run) == []


def test_argmax_for_accuracy_and_rounded_metric_are_quiet():
    def run():
        model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 3))
        opt = torch.optim.Adam(model.parameters(), lr=1e-2)
        for i in range(12):
            xb, yb = X[i * 8:i * 8 + 16], Y[i * 8:i * 8 + 16]
            out = model(xb)
            loss = F.cross_entropy(out, yb)
            acc = (out.argmax(1) == yb).float().mean() + (out.sigmoid().round() > 0).float().mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            del acc

    assert _observe(run) == []


def test_frozen_pretrained_encoder_before_a_hard_op_is_quiet():
    def run():
        model = Coded("round")
        for p in model.enc.parameters():
            p.requires_grad_(False)
        _loop(model, torch.optim.Adam(model.parameters(), lr=1e-2))

    assert _observe(run) == []


def test_target_network_copy_and_embedding_rows_are_quiet():
    def run():
        emb = nn.Embedding(1000, 8)
        q = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 3))
        target = copy.deepcopy(q)
        opt = torch.optim.Adam(list(q.parameters()) + list(emb.parameters()), lr=1e-2)
        for i in range(12):
            ids = torch.randint(0, 40, (16,), generator=G)
            s = emb(ids)
            with torch.no_grad():
                best = target(s.detach() + 0.1).max(1).values
                act = q(s).argmax(1)
            pred = q(s).gather(1, act[:, None]).squeeze(1)
            loss = F.smooth_l1_loss(pred, 0.9 * best + (q(s) > 0).float().mean(1).detach())
            opt.zero_grad()
            loss.backward()
            opt.step()
            if i % 4 == 3:
                target.load_state_dict(q.state_dict())

    assert _observe(run) == []


def test_gan_with_detached_fakes_and_a_hard_decision_metric_is_quiet():
    def run():
        gen = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 8))
        disc = nn.Sequential(nn.Linear(8, 16), nn.LeakyReLU(0.2), nn.Linear(16, 1))
        og = torch.optim.Adam(gen.parameters(), lr=1e-3)
        od = torch.optim.Adam(disc.parameters(), lr=1e-3)
        for i in range(12):
            real = X[i * 8:i * 8 + 16]
            fake = gen(torch.randn(16, 4, generator=G))
            d_real, d_fake = disc(real), disc(fake.detach())
            d_loss = F.binary_cross_entropy_with_logits(d_real, torch.ones_like(d_real)) + \
                F.binary_cross_entropy_with_logits(d_fake, torch.zeros_like(d_fake))
            od.zero_grad()
            d_loss.backward()
            od.step()
            d_acc = ((d_real > 0).float().mean() + (d_fake < 0).float().mean()) / 2
            g_out = disc(fake)
            g_loss = F.binary_cross_entropy_with_logits(g_out, torch.ones_like(g_out))
            og.zero_grad()
            g_loss.backward()
            og.step()
            del d_acc

    assert _observe(run) == []


def test_upstream_params_walks_the_graph_and_the_log_is_bounded():
    a, b = nn.Linear(4, 4), nn.Linear(4, 4)
    h = b(a(torch.randn(2, 4)).detach())
    assert upstream_params(h) == {id(b.weight), id(b.bias)}
    log = CutLog()
    for k in range(40):
        log.record("round", (h,), h.round(), "m", lambda k=k: f"f.py:{k}", 1)
    log.record("gt", (torch.randn(3), 0), None, "m", lambda: "f.py:99", 1)  # no graph: not recorded
    assert len(log.sites) == 12 and not log.explaining({id(a.weight)})


def test_zero_gradient_from_elsewhere_is_not_blamed_on_a_rounded_metric():
    """A branch multiplied by 0 gets exact-zero gradients; the round of a metric computed with
    gradients on is not in the loss's graph, so it is not named as the cut."""
    class Gated(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.side = nn.Linear(8, 3)
            self.main = nn.Linear(8, 3)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.main(x) + 0.0 * self.side(x)

    def run():
        model = Gated()
        opt = torch.optim.Adam(model.parameters(), lr=1e-2)
        for i in range(12):
            xb, yb = X[i * 8:i * 8 + 16], Y[i * 8:i * 8 + 16]
            out = model(xb)
            hit_rate = out.softmax(1).round().mean()  # a metric, gradients on
            opt.zero_grad()
            F.cross_entropy(out, yb).backward()
            opt.step()
            del hit_rate

    assert [f for f in _observe(run) if f.code == CODE] == []
