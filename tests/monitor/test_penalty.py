"""regularization: a hand-written weight penalty in the loss that outweighs the data loss."""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from nndoctor.monitor import Observer
from nndoctor.monitor.checks.penalty import LossPenaltyDominates


def _data(n=1024, d=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=g)
    return x, (x[:, :4].argmax(1))


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(16, 64)
        self.fc2 = nn.Linear(64, 32)
        self.fc3 = nn.Linear(32, 4)

    def forward(self, x):
        self.hidden = F.relu(self.fc2(F.relu(self.fc1(x))))
        return self.fc3(self.hidden)


def _run(model, opt, penalty, steps=30, loss_fn=F.cross_entropy):
    x, y = _data()
    losses = []
    with Observer(checks=[LossPenaltyDominates]) as obs:
        for i in range(steps):
            j = (i * 64) % len(x)
            data = loss_fn(model(x[j:j + 64]), y[j:j + 64])
            loss = data + penalty(model)
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
    assert not obs.internal_errors, obs.internal_errors
    return obs.findings, losses


def _seq():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(16, 64), nn.ReLU(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 4))


def test_l2_sum_over_every_parameter_with_sgd():
    model = _seq()
    found, _ = _run(model, torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9),
                    lambda m: 0.2 * sum(p.pow(2).sum() for p in m.parameters()))
    [f] = found
    assert f.code == "regularization.loss-penalty-too-strong" and f.evidence["kind"] == "L2"
    assert f.evidence["ratio"] >= 1 and f.evidence["cosine"] >= 0.9
    assert len(f.evidence["penalised_params"]) == 6 and f.first_step <= 8


def test_l1_penalty_with_adam_and_a_module_loss():
    torch.manual_seed(0)
    model = Net()
    mse = nn.MSELoss()
    found, _ = _run(model, torch.optim.Adam(model.parameters(), lr=1e-3),
                    lambda m: 0.05 * sum(p.abs().sum() for p in m.parameters()),
                    loss_fn=lambda out, y: mse(out, F.one_hot(y, 4).float()))
    [f] = found
    assert f.evidence["kind"] == "L1" and "L1 penalty" in f.message


def test_norm_penalty_on_selected_layers():
    torch.manual_seed(0)
    model = Net()
    found, _ = _run(model, torch.optim.SGD(model.parameters(), lr=0.01),
                    lambda m: 2.0 * (torch.norm(m.fc1.weight) + torch.norm(m.fc2.weight)))
    [f] = found
    assert sorted(f.evidence["penalised_params"]) == ["model.fc1.weight", "model.fc2.weight"]
    assert f.location in ("model.fc1.weight", "model.fc2.weight")


def test_small_penalty_stays_quiet():
    model = _seq()
    found, _ = _run(model, torch.optim.Adam(model.parameters(), lr=1e-3),
                    lambda m: 1e-4 * sum(p.pow(2).sum() for p in m.parameters()))
    assert not found


def test_activation_penalty_is_not_a_weight_penalty():
    # a large penalty on hidden activations goes through the model's matmuls: not this check's business
    torch.manual_seed(0)
    model = Net()
    found, _ = _run(model, torch.optim.SGD(model.parameters(), lr=0.01),
                    lambda m: 5.0 * m.hidden.pow(2).mean())
    assert not found


def test_training_is_unchanged_by_the_check():
    def go(observe):
        torch.manual_seed(0)
        model = _seq()
        opt = torch.optim.SGD(model.parameters(), lr=0.05)
        pen = lambda m: 0.2 * sum(p.pow(2).sum() for p in m.parameters())  # noqa: E731
        if observe:
            return _run(model, opt, pen, steps=12)[1]
        x, y = _data()
        out = []
        for i in range(12):
            j = (i * 64) % len(x)
            loss = F.cross_entropy(model(x[j:j + 64]), y[j:j + 64]) + pen(model)
            opt.zero_grad()
            loss.backward()
            opt.step()
            out.append(loss.item())
        return out

    assert go(True) == go(False)
