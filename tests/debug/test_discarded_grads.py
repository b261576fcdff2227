"""zero-grad.gradients-discarded: zero_grad() inside the accumulation loop / step() out of the batch loop
caught in several styles; accumulation done right, GANs, SAM, LBFGS and multi-loss backwards stay quiet."""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from nndoctor.debug.discarded_grads import GradientsDiscarded
from nndoctor.findings import Severity
from nndoctor.monitor import Observer

N = 16
CODE = "zero-grad.gradients-discarded"


def _batches(n: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(8 * N, 6, generator=g)
    y = (x[:, 0] > 0).long()
    for i in range(n):
        s = (i * N) % len(x)
        yield i, x[s:s + N], y[s:s + N]


def _mlp() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 2))


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(1)
        self.hidden = nn.Linear(6, 16)
        self.out = nn.Linear(16, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(torch.tanh(self.hidden(x)))


def _observe(loop) -> list:
    with Observer(checks=[GradientsDiscarded]) as obs:
        loop()
    assert not obs.internal_errors, obs.internal_errors
    return [f for f in obs.findings if f.severity is not Severity.INFO]


# ---------------------------------------------------------------------------- bugs
def test_zero_grad_every_micro_batch_of_an_accumulation_sequential_sgd():
    model = _mlp()
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)

    def loop():
        for i, xb, yb in _batches(32):
            opt.zero_grad()
            (F.cross_entropy(model(xb), yb) / 4).backward()
            if (i + 1) % 4 == 0:
                opt.step()

    found = _observe(loop)
    assert [f.code for f in found] == [CODE]
    f = found[0]
    assert f.severity is Severity.WARNING and f.location == "opt"
    assert f.evidence["backwards_per_step"] == 4 and f.evidence["discarded"] * 4 == f.evidence["backwards"] * 3
    assert "opt.zero_grad()" in f.fixes[0]


def test_step_once_per_epoch_subclass_adam_model_zero_grad_in_main():
    def main():
        model = Net()
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
        criterion = nn.CrossEntropyLoss()
        for _epoch in range(4):
            for _i, xb, yb in _batches(8):
                model.zero_grad()
                loss = criterion(model(xb), yb)
                loss.backward()
            optimizer.step()

    found = _observe(main)
    assert [f.code for f in found] == [CODE]
    assert found[0].evidence["backwards_per_step"] == 8 and found[0].location == "optimizer"


def test_manual_grad_none_clearing_with_rmsprop():
    model = _mlp()
    opt = torch.optim.RMSprop(model.parameters(), lr=1e-3)

    def loop():
        for i, xb, yb in _batches(30):
            for p in model.parameters():
                p.grad = None
            F.cross_entropy(model(xb), yb).backward()
            if i % 3 == 2:
                opt.step()

    assert [f.code for f in _observe(loop)] == [CODE]


# ---------------------------------------------------------------------------- healthy
def test_accumulation_done_right_and_plain_loops_are_quiet():
    model = _mlp()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    net = Net()
    sgd = torch.optim.SGD(net.parameters(), lr=0.1)

    def loop():
        for i, xb, yb in _batches(32):
            (F.cross_entropy(model(xb), yb) / 4).backward()
            if (i + 1) % 4 == 0:
                opt.step()
                opt.zero_grad(set_to_none=False)
            sgd.zero_grad()
            F.cross_entropy(net(xb), yb).backward()
            sgd.step()

    assert _observe(loop) == []


def test_two_losses_with_two_backwards_per_step_are_quiet():
    model = Net()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)

    def loop():
        for _i, xb, yb in _batches(24):
            opt.zero_grad()
            out = model(xb)
            F.cross_entropy(out, yb).backward(retain_graph=True)
            (0.1 * out.pow(2).mean()).backward()
            opt.step()

    assert _observe(loop) == []


def test_gan_generator_loss_reaching_the_discriminator_is_quiet():
    torch.manual_seed(0)
    gen = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 2))
    disc = nn.Sequential(nn.Linear(2, 16), nn.LeakyReLU(0.2), nn.Linear(16, 1))
    opt_g = torch.optim.Adam(gen.parameters(), lr=1e-3, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(disc.parameters(), lr=1e-3, betas=(0.5, 0.999))
    ones, zeros = torch.ones(N, 1), torch.zeros(N, 1)

    def loop():
        for it in range(40):
            real = torch.randn(N, 2) * 0.5 + 2.0
            fake = gen(torch.randn(N, 4))
            opt_d.zero_grad()
            d_loss = (F.binary_cross_entropy_with_logits(disc(real), ones)
                      + F.binary_cross_entropy_with_logits(disc(fake.detach()), zeros))
            d_loss.backward()
            opt_d.step()
            if it % 3 == 0:  # WGAN-style: several critic steps per generator step
                opt_g.zero_grad()
                F.binary_cross_entropy_with_logits(disc(fake), ones).backward()
                opt_g.step()

    assert _observe(loop) == []


def test_sam_style_perturbation_between_the_two_backwards_is_quiet():
    model = _mlp()
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)

    def loop():
        for _i, xb, yb in _batches(24):
            opt.zero_grad()
            F.cross_entropy(model(xb), yb).backward()
            with torch.no_grad():  # ascend to the worst nearby point (uses the first gradient)
                eps = [0.05 * p.grad / (p.grad.norm() + 1e-12) for p in model.parameters()]
                for p, e in zip(model.parameters(), eps):
                    p.add_(e)
            opt.zero_grad()
            F.cross_entropy(model(xb), yb).backward()
            with torch.no_grad():
                for p, e in zip(model.parameters(), eps):
                    p.sub_(e)
            opt.step()

    assert _observe(loop) == []


def test_lbfgs_closure_clearing_inside_step_is_quiet():
    model = _mlp()
    opt = torch.optim.LBFGS(model.parameters(), lr=0.5, max_iter=5)
    x = torch.randn(64, 6)
    y = (x[:, 0] > 0).long()

    def closure():
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        return loss

    def loop():
        for _ in range(8):
            opt.step(closure)

    assert _observe(loop) == []


def test_pgd_adversarial_training_clearing_parameter_grads_is_quiet():
    model = _mlp()
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)

    def loop():
        for _i, xb, yb in _batches(16):
            delta = torch.zeros_like(xb, requires_grad=True)
            for _ in range(4):  # PGD: the backward is for delta's gradient
                model.zero_grad()
                F.cross_entropy(model(xb + delta), yb).backward()
                delta = (delta + 0.05 * delta.grad.sign()).clamp(-0.2, 0.2).detach().requires_grad_(True)
            opt.zero_grad()
            F.cross_entropy(model(xb + delta.detach()), yb).backward()
            opt.step()

    assert _observe(loop) == []
