"""regularization.label-smoothing-too-strong: targets smoothed until they carry no class."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from nndoctor.findings import Severity
from nndoctor.monitor import Observer
from nndoctor.monitor.checks.label_smoothing import LabelSmoothingTooStrong

CODE = "regularization.label-smoothing-too-strong"


def _data(n: int = 512, k: int = 4, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, k, (n,), generator=g)
    return torch.randn(k, 6, generator=g)[y] + 0.5 * torch.randn(n, 6, generator=g), y


class Net(nn.Module):
    def __init__(self, k: int) -> None:
        super().__init__()
        self.a, self.b = nn.Linear(6, 16), nn.Linear(16, k)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.b(torch.tanh(self.a(x)))


def _run(loss_of, *, k: int = 4, sequential: bool = True, sgd: bool = False, steps: int = 12) -> list:
    x, y = _data(k=max(k, 2))
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, k)) if sequential else Net(k)
    opt = torch.optim.SGD(model.parameters(), lr=0.1) if sgd else torch.optim.Adam(model.parameters(), lr=1e-3)
    with Observer(checks=[LabelSmoothingTooStrong]) as obs:
        for i in range(steps):
            b = slice(32 * i, 32 * i + 32)
            loss = loss_of(model(x[b]), y[b])
            opt.zero_grad()
            loss.backward()
            opt.step()
    assert not obs.internal_errors, obs.internal_errors
    return [f for f in obs.findings if f.code == CODE]


def _loud(found: list) -> list:
    return [f for f in found if f.severity is not Severity.INFO]


def test_module_label_smoothing_one_is_an_error():
    found = _run(nn.CrossEntropyLoss(label_smoothing=1.0))
    assert len(found) == 1 and found[0].severity is Severity.ERROR


def test_functional_label_smoothing_one_subclass_sgd():
    found = _run(lambda o, t: F.cross_entropy(o, t, label_smoothing=1.0), sequential=False, sgd=True)
    assert len(found) == 1 and found[0].severity is Severity.ERROR


def test_hand_made_smoothing_eps_one_soft_targets():
    def loss(o: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        eps = 1.0
        return F.cross_entropy(o, F.one_hot(t, 4).float() * (1 - eps) + eps / 4)
    found = _loud(_run(loss, sequential=False))
    assert len(found) == 1 and found[0].evidence["uniform_batches"] >= 3


def test_binary_targets_smoothed_to_one_half():
    def loss(o: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        eps = 1.0
        return F.binary_cross_entropy_with_logits(o.squeeze(1), (t % 2).float() * (1 - eps) + 0.5 * eps)
    assert len(_loud(_run(loss, k=1, sgd=True))) == 1


@pytest.mark.parametrize("style", ["module_0.1", "hand_0.1", "mixup", "bce_smoothed"])
def test_usual_smoothing_and_soft_targets_are_quiet(style: str):
    def mixup(o: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        soft = F.one_hot(t, 4).float()
        return F.cross_entropy(o, 0.7 * soft + 0.3 * soft.flip(0))
    loss = {"module_0.1": nn.CrossEntropyLoss(label_smoothing=0.1),
            "hand_0.1": lambda o, t: F.cross_entropy(o, F.one_hot(t, 4).float() * 0.9 + 0.1 / 4),
            "mixup": mixup,
            "bce_smoothed": lambda o, t: F.binary_cross_entropy_with_logits(o[:, 0], (t % 2).float() * 0.9 + 0.05),
            }[style]
    assert _run(loss) == []


def test_uniform_auxiliary_term_beside_a_real_loss_is_quiet():
    def loss(o: torch.Tensor, t: torch.Tensor) -> torch.Tensor:  # outlier exposure: uniform targets on outliers
        outliers = torch.full((8, 4), 0.25)
        return F.cross_entropy(o[8:], t[8:]) + 0.5 * F.cross_entropy(o[:8], outliers)
    assert _run(loss) == []


def test_strong_but_learnable_smoothing_is_info():
    found = _run(nn.CrossEntropyLoss(label_smoothing=0.6))
    assert len(found) == 1 and found[0].severity is Severity.INFO
