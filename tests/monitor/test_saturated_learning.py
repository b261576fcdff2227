"""activation.saturated when the model learns anyway: a wide tanh/sigmoid layer saturated on raw inputs
whose loss still comes down far (to <= 30% of its start) is info at the end of the run, not a warning.

Real case: torchdiffeq's latent_ode.py, a hand-written RNN cell ``tanh(i2h(cat(x, h)))`` over raw spiral
observations: 76% of its pre-activations beyond +-3 while the ELBO improves threefold. Saturation is a
problem when it keeps the model from learning; the same saturated layers with a loss that stays put
still warn.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from nndoctor.monitor import Observer
from nndoctor.monitor.checks.activations import ActivationHealth

CODE = "activation.saturated"


class Cell(nn.Module):
    """A recognition RNN written by hand, reading raw observations (large values)."""

    def __init__(self, obs=2, hidden=25):
        super().__init__()
        self.i2h, self.h2o = nn.Linear(obs + hidden, hidden), nn.Linear(hidden, 1)

    def forward(self, x):  # x: (batch, time, obs)
        h = x.new_zeros(x.shape[0], self.i2h.out_features)
        for t in range(x.shape[1]):
            h = torch.tanh(self.i2h(torch.cat((x[:, t], h), dim=1)))
        return self.h2o(h).squeeze(1)


class SigmoidNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(16, 64), nn.Linear(64, 4)

    def forward(self, x):
        return self.fc2(torch.sigmoid(self.fc1(x)))


def _task(style: str, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    if style == "rnn-cell":
        x = torch.randn(512, 6, 2, generator=g) * 80.0  # raw observations: the tanh saturates
        y = torch.sign(x[:, -1, 0]) + 0.5 * torch.sign(x[:, -1, 1])
        return Cell(), x, y, F.mse_loss
    x = torch.randn(512, 16, generator=g)
    y = x[:, :4].argmax(1)
    if style == "sequential-tanh":
        return nn.Sequential(nn.Linear(16, 64), nn.Tanh(), nn.Linear(64, 4)), x * 40.0, y, F.cross_entropy
    return SigmoidNet(), x * 60.0, y, F.cross_entropy


def _run(style: str, lr: float, steps: int = 300):
    torch.manual_seed(0)
    model, x, y, loss_fn = _task(style)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    losses = []
    with Observer(checks=[ActivationHealth]) as obs:
        for i in range(steps):
            j = (i * 64) % len(x)
            opt.zero_grad()
            loss = loss_fn(model(x[j:j + 64]), y[j:j + 64])
            loss.backward()
            opt.step()
            losses.append(loss.item())
    return [f for f in obs.report().findings if f.code == CODE], losses


@pytest.mark.parametrize("style", ["rnn-cell", "sequential-tanh", "functional-sigmoid"])
def test_a_saturated_wide_layer_of_a_model_that_learns_anyway_is_info(style):
    found, losses = _run(style, lr=1e-2)
    assert sum(losses[-20:]) / 20 < 0.3 * sum(losses[:5]) / 5  # it learns (the premise)
    assert found, "the saturation is still reported"
    assert all(f.severity.value == "info" and "learning_anyway" in f.evidence for f in found), found


@pytest.mark.parametrize("style", ["rnn-cell", "sequential-tanh", "functional-sigmoid"])
def test_the_same_saturated_layer_whose_loss_stays_put_still_warns(style):
    found, losses = _run(style, lr=1e-6)
    assert sum(losses[-20:]) / 20 > 0.6 * sum(losses[:5]) / 5  # it does not learn
    assert [f.severity.value for f in found] and all(f.severity.value == "warning" for f in found), found
