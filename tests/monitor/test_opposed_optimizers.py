"""grad-flow.optimizers-pull-apart: parameters in two optimizers whose gradients oppose each other."""

from __future__ import annotations

import itertools

import torch
import torch.nn as nn
import torch.nn.functional as F
from _dyn_helpers import blobs

from nndoctor.monitor import Observer
from nndoctor.monitor.checks.opposed_optimizers import OptimizersPullApart

CODE = "grad-flow.optimizers-pull-apart"


def _found(loop) -> list:
    with Observer(checks=[OptimizersPullApart]) as obs:
        loop()
    assert not obs.internal_errors, obs.internal_errors
    return [f for f in obs.findings if f.code == CODE]


def _gan(d_params, steps=120, detach=False, loss="bce"):
    torch.manual_seed(0)
    G = nn.Sequential(nn.Linear(4, 32), nn.ReLU(), nn.Linear(32, 2))
    D = nn.Sequential(nn.Linear(2, 32), nn.LeakyReLU(0.2), nn.Linear(32, 1))
    opt_d = torch.optim.Adam(d_params(G, D), 1e-3, betas=(0.5, 0.999))
    opt_g = torch.optim.Adam(G.parameters(), 1e-3, betas=(0.5, 0.999))

    def loop():
        for _ in range(steps):
            real = torch.randn(64, 2) * 0.5 + 2.0
            z = torch.randn(64, 4)
            fake = G(z)
            d_fake = D(fake.detach() if detach else fake)
            if loss == "bce":
                d_loss = (F.binary_cross_entropy_with_logits(D(real), torch.ones(64, 1))
                          + F.binary_cross_entropy_with_logits(d_fake, torch.zeros(64, 1)))
            else:  # hinge
                d_loss = F.relu(1 - D(real)).mean() + F.relu(1 + d_fake).mean()
            opt_d.zero_grad()
            d_loss.backward()
            opt_d.step()
            out = D(G(z))
            g_loss = F.binary_cross_entropy_with_logits(out, torch.ones(64, 1)) if loss == "bce" else -out.mean()
            opt_g.zero_grad()
            g_loss.backward()
            opt_g.step()

    return loop


def test_discriminator_optimizer_over_both_models_list_concat_bce():
    found = _found(_gan(lambda G, D: list(D.parameters()) + list(G.parameters())))
    assert len(found) == 1 and found[0].evidence["cosine_median"] <= -0.5
    assert found[0].evidence["shared_params"] == 4


def test_discriminator_optimizer_over_itertools_chain_hinge_loss():
    assert len(_found(_gan(lambda G, D: itertools.chain(D.parameters(), G.parameters()), loss="hinge"))) == 1


class _DomainAdversarial(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.encoder = nn.Sequential(nn.Linear(16, 32), nn.ReLU())
        self.domain = nn.Sequential(nn.Linear(32, 16), nn.ReLU(), nn.Linear(16, 1))


def test_adversary_optimizer_holding_the_encoder_in_a_trainer_class():
    X, y = blobs(n=2048)
    torch.manual_seed(0)
    net = _DomainAdversarial()
    dom = (torch.arange(2048) % 2).float()[:, None]
    X = X + dom * 1.5  # a domain the encoder should hide

    class Trainer:
        def __init__(self) -> None:
            # the adversary's optimizer holds the encoder too (it should hold net.domain only)
            self.opt_adv = torch.optim.SGD([*net.domain.parameters(), *net.encoder.parameters()], lr=0.05)
            self.opt_main = torch.optim.SGD(net.encoder.parameters(), lr=0.05)

        def step(self, i: int) -> None:
            xb, db = X[i:i + 64], dom[i:i + 64]
            adv = F.binary_cross_entropy_with_logits(net.domain(net.encoder(xb)), db)
            self.opt_adv.zero_grad()
            adv.backward()
            self.opt_adv.step()
            h = net.encoder(xb)  # ADDA's encoder step: fool the adversary with inverted domain labels
            main = F.binary_cross_entropy_with_logits(net.domain(h), 1 - db)
            self.opt_main.zero_grad()
            main.backward()
            self.opt_main.step()

    t = Trainer()
    found = _found(lambda: [t.step((k * 64) % 1984) for k in range(120)])
    assert len(found) == 1 and found[0].evidence["shared_params"] == 2  # the encoder's weight and bias


def test_disjoint_gan_shared_cooperative_trunk_and_one_gradient_twice_are_quiet():
    assert _found(_gan(lambda G, D: D.parameters(), detach=True)) == []
    assert _found(_gan(lambda G, D: D.parameters())) == []  # fakes not detached, but D's optimizer is D's own

    X, y = blobs(n=2048)
    torch.manual_seed(0)
    trunk = nn.Sequential(nn.Linear(16, 32), nn.ReLU())
    head_a, head_b = nn.Linear(32, 4), nn.Linear(32, 1)
    opt_a = torch.optim.Adam([*trunk.parameters(), *head_a.parameters()], 1e-3)
    opt_b = torch.optim.Adam([*trunk.parameters(), *head_b.parameters()], 1e-3)
    target_b = X.norm(dim=1, keepdim=True)

    def two_tasks():  # actor-critic-like: a shared trunk, two cooperating losses, two optimizers
        for k in range(120):
            i = (k * 64) % 1984
            opt_a.zero_grad()
            F.cross_entropy(head_a(trunk(X[i:i + 64])), y[i:i + 64]).backward()
            opt_a.step()
            opt_b.zero_grad()
            F.mse_loss(head_b(trunk(X[i:i + 64])), target_b[i:i + 64]).backward()
            opt_b.step()

    assert _found(two_tasks) == []

    model = nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 4))
    sgd, adam = torch.optim.SGD(model.parameters(), 0.05), torch.optim.Adam(model.parameters(), 1e-3)

    def twice():
        for k in range(120):
            i = (k * 64) % 1984
            sgd.zero_grad()
            F.cross_entropy(model(X[i:i + 64]), y[i:i + 64]).backward()
            sgd.step()
            adam.step()

    assert _found(twice) == []
