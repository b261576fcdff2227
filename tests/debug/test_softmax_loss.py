"""loss-input.softmax-into-regression-loss: softmax outputs trained with MSE/L1/margin loss on hard classes."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from nndoctor.debug.softmax_loss import SoftmaxIntoRegressionLoss
from nndoctor.findings import Severity
from nndoctor.monitor import Observer

CODE = "loss-input.softmax-into-regression-loss"
K, D, N = 5, 8, 32


def _data(seed=0):
    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(K, D, generator=g) * 2
    y = torch.randint(0, K, (640,), generator=g)
    return centres[y] + torch.randn(640, D, generator=g), y


class _Net(nn.Module):
    def __init__(self, softmax=True):
        super().__init__()
        self.fc1, self.fc2, self.softmax = nn.Linear(D, 32), nn.Linear(32, K), softmax

    def forward(self, x):
        z = self.fc2(torch.tanh(self.fc1(x)))
        return F.softmax(z, dim=-1) if self.softmax else z


def _run(model, loss_of, opt, steps=80):
    x, y = _data()
    with Observer(checks=[SoftmaxIntoRegressionLoss]) as obs:
        for i in range(steps):
            j = (i * N) % 640
            loss = loss_of(model(x[j:j + N]), y[j:j + N])
            opt.zero_grad()
            loss.backward()
            opt.step()
    assert not obs.internal_errors, obs.internal_errors
    return [f for f in obs.findings if f.code == CODE]


def _sgd(m, lr=0.01):
    return torch.optim.SGD(m.parameters(), lr=lr)


@pytest.mark.parametrize("style", ["sequential-mse-one-hot", "class-l1-one-hot", "margin-loss-class-ids"])
def test_softmax_trained_with_a_regression_loss_that_stalls_warns(style):
    torch.manual_seed(0)
    if style == "sequential-mse-one-hot":  # Keras: Dense(K, 'softmax') + loss='mean_squared_error'
        model = nn.Sequential(nn.Linear(D, 32), nn.ReLU(), nn.Linear(32, K), nn.Softmax(dim=1))
        loss_of = lambda out, t: nn.MSELoss()(out, F.one_hot(t, K).float())  # noqa: E731
    elif style == "class-l1-one-hot":
        model = _Net()
        loss_of = lambda out, t: F.l1_loss(out, F.one_hot(t, K).float())  # noqa: E731
    else:  # Keras 'categorical_hinge' ported as MultiMarginLoss on probabilities
        model = nn.Sequential(nn.Linear(D, 32), nn.ReLU(), nn.Linear(32, K), nn.Softmax(dim=-1))
        loss_of = nn.MultiMarginLoss()
    found = _run(model, loss_of, _sgd(model))
    assert len(found) == 1 and found[0].severity == Severity.WARNING, [(f.severity, f.message) for f in found]
    assert found[0].evidence["classes"] == K and "stalled" in found[0].message


def test_softmax_mse_that_trains_well_is_info_only():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(D, 32), nn.ReLU(), nn.Linear(32, K), nn.Softmax(dim=1))
    found = _run(model, lambda out, t: F.mse_loss(out, F.one_hot(t, K).float()),
                 torch.optim.Adam(model.parameters(), lr=1e-2))
    assert [f.severity for f in found] == [Severity.INFO]


def test_healthy_lookalikes_stay_quiet():
    torch.manual_seed(0)
    teacher = _Net()
    # distillation: MSE between the student's softmax and a teacher's soft probabilities
    student = _Net()
    with torch.no_grad():
        soft = teacher(_data()[0])

    def distil(out, t, _soft=soft):
        return F.mse_loss(out, _soft[:len(out)])

    assert _run(student, distil, _sgd(student, 0.1)) == []
    # label smoothing: soft one-hot rows
    m2 = _Net()
    assert _run(m2, lambda out, t: F.mse_loss(out, F.one_hot(t, K).float() * 0.9 + 0.1 / K), _sgd(m2)) == []
    # cross-entropy on logits, and MSE on logits against one-hot (no softmax)
    m3, m4 = _Net(softmax=False), _Net(softmax=False)
    assert _run(m3, F.cross_entropy, _sgd(m3, 0.1)) == []
    assert _run(m4, lambda out, t: F.mse_loss(out, F.one_hot(t, K).float()), _sgd(m4, 0.1)) == []
