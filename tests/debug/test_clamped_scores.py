"""loss-input.clamped-scores-as-probabilities: a linear head clamped into [0, 1] and fed to BCE."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from nndoctor.debug.clamped_scores import ClampedScoresAsProbabilities
from nndoctor.monitor import Observer

CODE = "loss-input.clamped-scores-as-probabilities"
EPS = 1e-7


def _data():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(256, 6, generator=g)
    return x, (x[:, 0] + x[:, 1] > 0).float().unsqueeze(1)


def _run(model, loss_of, steps=8):
    x, y = _data()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    with Observer(checks=[ClampedScoresAsProbabilities]) as obs:
        for i in range(steps):
            xb, yb = x[i * 32:(i + 1) * 32], y[i * 32:(i + 1) * 32]
            loss = loss_of(model(xb), yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
    assert not obs.internal_errors, obs.internal_errors
    return [f for f in obs.findings if f.code == CODE]


class _ClipNet(nn.Module):
    def __init__(self, squash=None):
        super().__init__()
        self.fc1, self.fc2, self.squash = nn.Linear(6, 16), nn.Linear(16, 1), squash

    def forward(self, x):
        z = self.fc2(F.relu(self.fc1(x)))
        if self.squash is not None:
            z = self.squash(z)
        return torch.clip(z, 0.01, 0.99)


def _keras_binary_crossentropy(y_pred, y_true):
    return F.binary_cross_entropy(torch.clamp(y_pred, min=EPS, max=1 - EPS), y_true)


@pytest.mark.parametrize("style", ["sequential-clamp-bceloss", "clip-in-forward", "keras-loss-helper"])
def test_clamped_linear_scores_into_bce_warn(style):
    torch.manual_seed(0)
    if style == "sequential-clamp-bceloss":
        model = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 1))
        loss_of = lambda out, t: nn.BCELoss()(out.clamp(EPS, 1 - EPS), t)  # noqa: E731
    elif style == "clip-in-forward":
        model, loss_of = _ClipNet(), F.binary_cross_entropy
    else:
        model = nn.Sequential(nn.Linear(6, 16), nn.Tanh(), nn.Linear(16, 1))
        loss_of = _keras_binary_crossentropy
    found = _run(model, loss_of)
    assert len(found) == 1 and found[0].severity.value == "warning", found
    assert found[0].evidence["share_at_bounds"] >= 0.1


def test_clamps_that_are_not_the_bug_stay_quiet():
    torch.manual_seed(0)
    # a clamp after a sigmoid, for numerical safety
    assert _run(_ClipNet(squash=torch.sigmoid), F.binary_cross_entropy) == []
    m = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 1), nn.Sigmoid())
    assert _run(m, _keras_binary_crossentropy) == []
    # a clamped regression output (not BCE), and BCE with logits on the raw scores
    m2 = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 1))
    assert _run(m2, lambda out, t: F.mse_loss(out.clamp(0, 1), t)) == []
    m3 = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 1))
    assert _run(m3, F.binary_cross_entropy_with_logits) == []
