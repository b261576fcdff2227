"""loss-curve.policy-gradient-surrogate: REINFORCE, actor-critic and PPO losses (several styles) are
recognised and their curves are not read as objectives; weighted, soft-target, hinge and entropy-
regularised supervised losses are not surrogates."""

from __future__ import annotations

from typing import Callable

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from nndoctor.findings import Severity
from nndoctor.monitor import Observer
from nndoctor.monitor.checks.surrogate import SurrogateLoss
from nndoctor.monitor.curves import SURROGATE_KEY, surrogate_loss

CODE = "loss-curve.policy-gradient-surrogate"
OBS, ACTIONS = 6, 3


def _policy() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(OBS, 32), nn.Tanh(), nn.Linear(32, ACTIONS))


def _reward(obs: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
    """Action k pays off when feature k is positive."""
    return (obs.gather(1, action[:, None]).squeeze(1) > 0).float()


def _batch_reinforce(policy: nn.Module, obs: torch.Tensor) -> torch.Tensor:
    dist = torch.distributions.Categorical(logits=policy(obs))
    action = dist.sample()
    ret = _reward(obs, action)
    adv = (ret - ret.mean()) / (ret.std() + 1e-8)
    return -(dist.log_prob(action) * adv).mean()


def _per_step_reinforce(policy: nn.Module, obs: torch.Tensor) -> torch.Tensor:
    # pytorch/examples style: a list of -log_prob * R terms, R a 0-d tensor of normalised returns
    probs = F.softmax(policy(obs), dim=-1)
    logps, rewards = [], []
    for i in range(len(obs)):
        dist = torch.distributions.Categorical(probs[i])
        action = dist.sample()
        logps.append(dist.log_prob(action))
        rewards.append(_reward(obs[i:i + 1], action[None])[0])
    returns = torch.stack(rewards)
    returns = (returns - returns.mean()) / (returns.std() + 1e-8)
    return torch.stack([-lp * r for lp, r in zip(logps, returns)]).sum()


def _actor_critic_one_sample(policy: nn.Module, obs: torch.Tensor) -> torch.Tensor:
    logits = policy(obs[:1])
    value = logits.mean(dim=1)  # (a stand-in critic head)
    dist = torch.distributions.Categorical(logits=logits)
    action = dist.sample()
    adv = _reward(obs[:1], action) - value
    return (-(dist.log_prob(action) * adv.detach()).mean() + 0.5 * adv.pow(2).mean()
            - 0.01 * dist.entropy().mean())


def _ppo_gaussian(policy: nn.Module, obs: torch.Tensor) -> torch.Tensor:
    mean = policy(obs)
    dist = torch.distributions.Normal(mean, torch.full_like(mean, 0.5))
    action = dist.sample()
    old_logp = dist.log_prob(action).sum(-1).detach() + 0.05 * torch.randn(len(obs))
    ratio = torch.exp(dist.log_prob(action).sum(-1) - old_logp)
    adv = -(action - obs[:, :ACTIONS]).pow(2).sum(-1)
    adv = (adv - adv.mean()) / (adv.std() + 1e-8)
    return -torch.min(ratio * adv, ratio.clamp(0.8, 1.2) * adv).mean()


def _run(loss_of: Callable[[nn.Module, torch.Tensor], torch.Tensor], steps: int = 60, lr: float = 1e-2):
    policy = _policy()
    opt = torch.optim.Adam(policy.parameters(), lr=lr)
    g = torch.Generator().manual_seed(1)
    with Observer(checks=[SurrogateLoss]) as obs:
        for _ in range(steps):
            x = torch.randn(32, OBS, generator=g)
            loss = loss_of(policy, x)
            opt.zero_grad()
            loss.backward()
            opt.step()
    assert not obs.internal_errors, obs.internal_errors
    return obs


@pytest.mark.parametrize("loss_of", [_batch_reinforce, _per_step_reinforce, _actor_critic_one_sample, _ppo_gaussian],
                         ids=["batch-reinforce", "per-step-reinforce", "actor-critic-1-sample", "ppo-gaussian"])
def test_policy_gradient_surrogates_are_recognised(loss_of):
    obs = _run(loss_of)
    assert surrogate_loss(obs.state), obs.state.extra.get(SURROGATE_KEY)
    found = [f for f in obs.findings if f.code == CODE]
    assert len(found) == 1 and found[0].severity is Severity.INFO
    ev = found[0].evidence
    assert ev["weight_min"] < 0 < ev["weight_max"] and ev["samples"] >= 2


def _labels(x: torch.Tensor) -> torch.Tensor:
    return x[:, :ACTIONS].argmax(1)


def _weighted_ce(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    w = x[:, 3].abs() + 0.1  # per-sample weights >= 0 that change every batch
    return (F.cross_entropy(model(x), _labels(x), reduction="none") * w).mean()


def _soft_targets(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    soft = F.one_hot(_labels(x), ACTIONS).float() * 0.9 + 0.1 / ACTIONS
    return -(soft * F.log_softmax(model(x), dim=1)).sum(1).mean()


def _hinge(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    y = (x[:, 0] > 0).float() * 2 - 1  # labels of both signs multiply the score
    return F.relu(1 - y * model(x)[:, 0]).mean()


def _logistic_pm1(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    y = (x[:, 0] > 0).float() * 2 - 1
    return F.softplus(-y * model(x)[:, 0]).mean()


def _entropy_terms_of_both_signs(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    logp = F.log_softmax(model(x), dim=1)
    entropy = -(logp.exp() * logp).sum(1).mean()
    return 0.5 * F.nll_loss(logp, _labels(x)) + torch.tensor(-0.01) * entropy


@pytest.mark.parametrize("loss_of", [_weighted_ce, _soft_targets, _hinge, _logistic_pm1, _entropy_terms_of_both_signs],
                         ids=["weighted-ce", "soft-targets", "hinge", "logistic-pm1", "constant-coefficients"])
def test_supervised_lookalikes_are_not_surrogates(loss_of):
    obs = _run(loss_of)
    assert not surrogate_loss(obs.state), obs.state.extra.get(SURROGATE_KEY)
    assert not [f for f in obs.findings if f.code == CODE]


CORRIDOR = 8


def _corridor_episode(policy: nn.Module, g: torch.Generator) -> torch.Tensor:
    """Walk right to the goal within 16 moves (reward 1 there, -0.01 a move): one REINFORCE loss."""
    pos, logps, rewards = 0, [], []
    for _ in range(16):
        obs = F.one_hot(torch.tensor(pos), CORRIDOR).float()
        dist = torch.distributions.Categorical(F.softmax(policy(obs), dim=-1))
        action = torch.multinomial(dist.probs, 1, generator=g)[0]
        logps.append(dist.log_prob(action))
        pos = max(0, min(CORRIDOR - 1, pos + (1 if int(action) == 1 else -1)))
        rewards.append(1.0 if pos == CORRIDOR - 1 else -0.01)
        if pos == CORRIDOR - 1:
            break
    ret, returns = 0.0, []
    for r in reversed(rewards):
        ret = r + 0.99 * ret
        returns.insert(0, ret)
    rt = torch.tensor(returns)
    rt = (rt - rt.mean()) / (rt.std() + 1e-8) if len(rt) > 1 else rt
    return -(torch.stack(logps) * rt).sum()


@pytest.mark.slow
def test_a_learning_reinforce_run_gets_no_curve_warnings(monkeypatch):
    # the surrogate rises towards 0 while the policy learns: read as a loss, a "too-high lr"
    def run() -> Observer:
        torch.manual_seed(0)
        policy = nn.Sequential(nn.Linear(CORRIDOR, 32), nn.Tanh(), nn.Linear(32, 2))
        opt = torch.optim.Adam(policy.parameters(), lr=1e-2)
        g = torch.Generator().manual_seed(0)
        with Observer() as obs:
            for _ in range(300):
                loss = _corridor_episode(policy, g)
                opt.zero_grad()
                loss.backward()
                opt.step()
        assert not obs.internal_errors, obs.internal_errors
        return obs

    obs = run()
    assert [f.code for f in obs.findings if f.severity is not Severity.INFO] == []
    assert CODE in {f.code for f in obs.findings}
    import nndoctor.monitor.curves as curves
    monkeypatch.setattr(curves, "surrogate_loss", lambda state: False)  # read as an ordinary loss...
    assert [f.code for f in run().findings if f.severity is not Severity.INFO]  # ...it gets warnings


def test_the_curve_of_a_surrogate_keeps_only_a_non_finite_explosion():
    from nndoctor.monitor.curves import analyze_losses
    from nndoctor.monitor.state import RunState

    def curve(values: list[float], surrogate: bool):
        state = RunState()
        for i, v in enumerate(values):
            state.losses.record_float(i + 1, v)
        if surrogate:
            state.extra[SURROGATE_KEY] = {"samples": 2}
        return analyze_losses(state)

    rising = [-3.0 + 3.0 * i / 150 + 0.05 * ((-1) ** i) for i in range(150)]  # a surrogate climbing to 0
    assert curve(rising, False).has("goes-up")
    assert curve(rising, True).symptoms == {}
    broken = [-1.0 + 0.01 * ((-1) ** i) for i in range(30)] + [-(10.0 ** (i / 4)) for i in range(1, 20)]
    assert not curve(broken, True).has("explodes")  # (a surrogate's magnitude says nothing)...
    assert curve(broken + [float("nan")] * 3, True).has("explodes")  # ...a non-finite loss does
