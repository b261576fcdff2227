"""One optimizer among several at a rate ~100x too high (a GAN's D or G, a critic, a head) is named by
its own update-to-weight ratio against the others'; GANs, actor-critics and heads at rates 10x apart
on purpose stay quiet."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from nndoctor.monitor import Observer
from nndoctor.monitor.checks.lr import LearningRate
from nndoctor.monitor.checks.lr_several import OneOptimizerTooFast

CHECKS = [LearningRate, OneOptimizerTooFast]


def _ring(n):
    t = torch.rand(n) * 6.28
    return torch.stack([torch.cos(t), torch.sin(t)], 1) + 0.05 * torch.randn(n, 2)


def _gan(d_lr, g_lr, steps=120, d_steps=1, opt=torch.optim.Adam, **kw):
    """Style 1: a GAN, D then G each iteration (optionally several D steps per G step)."""
    torch.manual_seed(0)
    netG = nn.Sequential(nn.Linear(8, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 2))
    netD = nn.Sequential(nn.Linear(2, 64), nn.LeakyReLU(0.2), nn.Linear(64, 64), nn.LeakyReLU(0.2), nn.Linear(64, 1))
    optD, optG = opt(netD.parameters(), lr=d_lr, **kw), opt(netG.parameters(), lr=g_lr, **kw)
    with Observer(checks=CHECKS) as obs:
        for _ in range(steps):
            for _ in range(d_steps):
                fake = netG(torch.randn(64, 8))
                lossD = (F.binary_cross_entropy_with_logits(netD(_ring(64)), torch.ones(64, 1))
                         + F.binary_cross_entropy_with_logits(netD(fake.detach()), torch.zeros(64, 1)))
                optD.zero_grad()
                lossD.backward()
                optD.step()
            lossG = F.binary_cross_entropy_with_logits(netD(fake), torch.ones(64, 1))
            optG.zero_grad()
            lossG.backward()
            optG.step()
    return obs


class _ActorCritic(nn.Module):
    def __init__(self):
        super().__init__()
        self.actor = nn.Sequential(nn.Linear(6, 64), nn.Tanh(), nn.Linear(64, 3))
        self.critic = nn.Sequential(nn.Linear(6, 64), nn.Tanh(), nn.Linear(64, 1))


def _actor_critic(actor_lr, critic_lr, steps=150):
    """Style 2: an advantage actor-critic on a synthetic bandit, one optimizer per head."""
    torch.manual_seed(0)
    ac = _ActorCritic()
    opt_actor = torch.optim.Adam(ac.actor.parameters(), lr=actor_lr)
    opt_critic = torch.optim.Adam(ac.critic.parameters(), lr=critic_lr)
    w = torch.randn(6, 3)
    with Observer(checks=CHECKS) as obs:
        for _ in range(steps):
            s = torch.randn(32, 6)
            dist = torch.distributions.Categorical(logits=ac.actor(s))
            a = dist.sample()
            r = (s @ w).gather(1, a[:, None]).squeeze(1)
            v = ac.critic(s).squeeze(1)
            adv = (r - v).detach()
            critic_loss = F.mse_loss(v, r)
            opt_critic.zero_grad()
            critic_loss.backward()
            opt_critic.step()
            actor_loss = -(dist.log_prob(a) * adv).mean()
            opt_actor.zero_grad()
            actor_loss.backward()
            opt_actor.step()
    return obs


def _encoder_head(enc_lr, head_lr, steps=150):
    """Style 3: an encoder and a classification head, each with its own optimizer, one loss."""
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(1)
    x = torch.randn(2000, 20, generator=g)
    y = (x[:, :3].sum(1) > 0).long() + (x[:, 3] > 1).long()
    encoder = nn.Sequential(nn.Linear(20, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU())
    head = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 3))
    enc_opt = torch.optim.Adam(encoder.parameters(), lr=enc_lr)
    head_opt = torch.optim.Adam(head.parameters(), lr=head_lr)
    with Observer(checks=CHECKS) as obs:
        for s in range(steps):
            j = (s * 32) % 1968
            loss = F.cross_entropy(head(encoder(x[j:j + 32])), y[j:j + 32])
            enc_opt.zero_grad()
            head_opt.zero_grad()
            loss.backward()
            enc_opt.step()
            head_opt.step()
    return obs


def _named(obs):
    return [f for f in obs.findings if f.code == "lr.too-high"]


@pytest.mark.parametrize("d_lr,g_lr,which", [(2e-2, 2e-4, "optD"), (2e-4, 2e-2, "optG")])
def test_gan_with_one_rate_100x_too_high_names_that_optimizer(d_lr, g_lr, which):
    found = _named(_gan(d_lr, g_lr, betas=(0.5, 0.999)))
    assert found and found[0].location == which, found
    assert found[0].evidence["lr"] == "0.02"


def test_actor_critic_with_the_critic_100x_too_high_names_the_critic():
    found = _named(_actor_critic(1e-4, 1e-1))
    assert found and found[0].location == "opt_critic", found


def test_encoder_and_head_with_the_head_100x_too_high_names_the_head():
    found = _named(_encoder_head(1e-3, 1e-1))
    assert found and found[0].location == "head_opt", found


def test_healthy_dcgan_like_rates_are_quiet():
    assert not _named(_gan(2e-4, 2e-4, betas=(0.5, 0.999)))


def test_healthy_wgan_with_five_critic_steps_is_quiet():
    assert not _named(_gan(5e-5, 5e-5, steps=60, d_steps=5, opt=torch.optim.RMSprop))


def test_healthy_actor_critic_with_rates_10x_apart_is_quiet():
    assert not _named(_actor_critic(1e-4, 1e-3))


def test_healthy_backbone_and_fresh_head_at_rates_100x_apart_are_quiet():
    assert not _named(_encoder_head(1e-5, 1e-3))
