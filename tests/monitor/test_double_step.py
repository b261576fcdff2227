"""optimizer.gradient-applied-twice: two optimizers stepping the same parameters after one backward,
a parameter listed twice, or step() called twice per backward; GANs, LBFGS, wrapper optimizers,
gradient accumulation, a shared backbone with two losses and disjoint param groups stay quiet."""

from __future__ import annotations

import warnings

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from nndoctor.monitor import Observer
from nndoctor.monitor.checks.double_step import GradientAppliedTwice

CODE = "optimizer.gradient-applied-twice"
_G = torch.Generator().manual_seed(0)
X = torch.randn(256, 10, generator=_G)
Y = (X[:, :3].sum(1) > 0).long()


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.body, self.head = nn.Linear(10, 16), nn.Linear(16, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.relu(self.body(x)))


def _model(style: str) -> nn.Module:
    torch.manual_seed(0)
    return Net() if style == "subclass" else nn.Sequential(nn.Linear(10, 16), nn.ReLU(), nn.Linear(16, 2))


def _batches(n: int = 30):
    for i in range(n):
        j = i % 8
        yield X[j * 32:(j + 1) * 32], Y[j * 32:(j + 1) * 32]


def _observe(loop) -> list:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with Observer(checks=[GradientAppliedTwice]) as obs:
            loop()
    assert not obs.internal_errors, obs.internal_errors
    return [f for f in obs.findings if f.code == CODE]


@pytest.mark.parametrize("style", ["subclass", "sequential"])
def test_two_optimizers_over_the_same_parameters(style):
    model = _model(style)
    sgd = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    adam = torch.optim.Adam(model.parameters(), lr=1e-3)

    def loop():
        for xb, yb in _batches():
            sgd.zero_grad()
            adam.zero_grad()
            nn.CrossEntropyLoss()(model(xb), yb).backward()
            sgd.step()
            adam.step()

    found = _observe(loop)
    assert len(found) == 1, found
    ev = found[0].evidence
    assert ev["how"] == "two optimizers" and ev["tensors"] == 4 and ev["first_optimizer"] != ev["optimizer"]


@pytest.mark.filterwarnings("ignore:optimizer contains a parameter group with duplicate parameters")
@pytest.mark.parametrize("opt_cls", [torch.optim.SGD, torch.optim.Adam])
def test_head_listed_twice_in_one_optimizer(opt_cls):
    model = _model("sequential")
    opt = opt_cls(list(model.parameters()) + list(model[2].parameters()), lr=1e-2)

    def loop():
        for xb, yb in _batches(10):
            opt.zero_grad()
            F.cross_entropy(model(xb), yb).backward()
            opt.step()

    found = _observe(loop)
    assert len(found) == 1 and found[0].evidence["how"] == "listed twice", found
    assert found[0].evidence["tensors"] == 2 and found[0].evidence["params"][0].endswith("2.weight")


def test_step_called_twice_per_backward_in_main():
    def main():
        model = _model("subclass")
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        for xb, yb in _batches():
            opt.zero_grad()
            loss = F.cross_entropy(model(xb), yb)
            loss.backward()
            opt.step()
            if loss.item() > 0:  # a second, stray step (e.g. left from a refactor)
                opt.step()

    found = _observe(main)
    assert len(found) == 1 and found[0].evidence["how"] == "stepped twice", found


# ---------------------------------------------------------------------------- healthy lookalikes
def test_gan_disjoint_optimizers_quiet():
    torch.manual_seed(0)
    g = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 2))
    d = nn.Sequential(nn.Linear(2, 16), nn.ReLU(), nn.Linear(16, 1))
    og, od = torch.optim.Adam(g.parameters(), 1e-3), torch.optim.Adam(d.parameters(), 1e-3)

    def loop():
        for _ in range(30):
            real, fake = torch.randn(32, 2) + 2, g(torch.randn(32, 4))
            od.zero_grad()
            (F.binary_cross_entropy_with_logits(d(real), torch.ones(32, 1))
             + F.binary_cross_entropy_with_logits(d(fake.detach()), torch.zeros(32, 1))).backward()
            od.step()
            og.zero_grad()
            F.binary_cross_entropy_with_logits(d(fake), torch.ones(32, 1)).backward()
            og.step()  # (d's grads from this backward stay, but od does not step them)

    assert _observe(loop) == []


def test_lbfgs_closure_quiet():
    model = _model("sequential")
    opt = torch.optim.LBFGS(model.parameters(), lr=0.5, max_iter=4)

    def loop():
        for _ in range(8):
            def closure():
                opt.zero_grad()
                loss = F.cross_entropy(model(X), Y)
                loss.backward()
                return loss
            opt.step(closure)

    assert _observe(loop) == []


class _Lookahead(torch.optim.Optimizer):
    """A wrapper optimizer: its step runs the inner optimizer's step, then pulls slow weights."""

    def __init__(self, inner: torch.optim.Optimizer, k: int = 3) -> None:
        self.inner, self.k, self.n = inner, k, 0
        params = [p for g in inner.param_groups for p in g["params"]]
        super().__init__(params, {})
        self.slow = [p.detach().clone() for p in params]

    @torch.no_grad()
    def step(self, closure=None):
        self.inner.step()
        self.n += 1
        if self.n % self.k == 0:
            for p, s in zip(self.param_groups[0]["params"], self.slow):
                s.add_(p - s, alpha=0.5)
                p.copy_(s)


def test_wrapper_optimizer_nesting_quiet():
    model = _model("subclass")
    opt = _Lookahead(torch.optim.Adam(model.parameters(), lr=1e-3))

    def loop():
        for xb, yb in _batches():
            opt.zero_grad()
            F.cross_entropy(model(xb), yb).backward()
            opt.step()

    assert _observe(loop) == []


def test_accumulation_shared_backbone_and_disjoint_groups_quiet():
    model = _model("subclass")
    body = torch.optim.SGD(model.body.parameters(), lr=0.05, momentum=0.9)
    head = torch.optim.Adam(model.head.parameters(), lr=1e-3)
    both = torch.optim.SGD(model.parameters(), lr=0.01)

    def loop():
        for i, (xb, yb) in enumerate(_batches(40)):
            (F.cross_entropy(model(xb), yb) / 4).backward()
            if i % 4 == 3:  # accumulation: one step per 4 backward passes, two optimizers, disjoint
                body.step()
                head.step()
                body.zero_grad()
                head.zero_grad()
            # a second loss on the same model with its own backward, then its own optimizer
            both.zero_grad()
            F.mse_loss(model(xb)[:, 0], yb.float()).backward()
            both.step()
            both.zero_grad(set_to_none=False)
            both.step()  # (a step over cleared gradients adds nothing: plain SGD, zero gradient)

    assert _observe(loop) == []
