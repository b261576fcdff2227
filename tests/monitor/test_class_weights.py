"""data.class-weights-inverted: loss class weights that grow with class frequency."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from nndoctor.findings import Severity
from nndoctor.monitor import Observer
from nndoctor.monitor.checks.data.class_weights import ClassWeightsInverted

CODE = "data.class-weights-inverted"


def _data(shares: tuple[float, ...], n: int = 1200, d: int = 8, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    y = torch.multinomial(torch.tensor(shares), n, replacement=True, generator=g)
    centres = torch.randn(len(shares), d, generator=g) * 2
    return centres[y] + torch.randn(n, d, generator=g), y


class Net(nn.Module):
    def __init__(self, d: int, k: int) -> None:
        super().__init__()
        self.a, self.b = nn.Linear(d, 16), nn.Linear(16, k)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.b(torch.relu(self.a(x)))


def _warnings(obs: Observer) -> list:
    assert not obs.internal_errors, obs.internal_errors
    return [f for f in obs.findings if f.code == CODE and f.severity is not Severity.INFO]


def _train(x, y, loss_of, *, sequential: bool, sgd: bool, k: int, steps: int = 30) -> list:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(x.shape[1], 16), nn.ReLU(), nn.Linear(16, k)) if sequential else Net(x.shape[1], k)
    opt = torch.optim.SGD(model.parameters(), lr=0.05) if sgd else torch.optim.Adam(model.parameters(), lr=1e-3)
    with Observer(checks=[ClassWeightsInverted]) as obs:
        for _ in range(steps):
            b = torch.randint(0, len(x), (64,))
            out = model(x[b])
            loss = loss_of(out.squeeze(1) if k == 1 else out, y[b])
            opt.zero_grad()
            loss.backward()
            opt.step()
    return _warnings(obs)


def test_weights_proportional_to_counts_module_loss_sequential_adam():
    x, y = _data((0.85, 0.1, 0.05))
    counts = torch.bincount(y).float()
    crit = nn.CrossEntropyLoss(weight=counts / counts.sum())  # bug: frequency, not inverse frequency
    found = _train(x, y, crit, sequential=True, sgd=False, k=3)
    assert len(found) == 1 and found[0].evidence["kind"] == "weight", found
    assert found[0].evidence["frequent_class"] == 0 and found[0].evidence["slope"] > 0.9


def test_binary_weights_swapped_functional_subclass_sgd():
    x, y = _data((0.9, 0.1), seed=1)
    n0, n1 = (y == 0).sum().item(), (y == 1).sum().item()
    w = torch.tensor([n0, n1], dtype=torch.float32) / len(y)  # bug: majority gets 0.9
    found = _train(x, y, lambda o, t: F.cross_entropy(o, t, weight=w), sequential=False, sgd=True, k=2)
    assert len(found) == 1


@pytest.mark.parametrize("module", [True, False])
def test_pos_weight_positive_over_negative(module: bool):
    x, y = _data((0.92, 0.08), seed=2)
    yf = y.float()
    pw = yf.sum() / (len(yf) - yf.sum())  # bug: n_pos / n_neg
    loss = nn.BCEWithLogitsLoss(pos_weight=pw) if module else (
        lambda o, t: F.binary_cross_entropy_with_logits(o, t, pos_weight=pw))
    found = _train(x, yf, loss, sequential=module, sgd=not module, k=1)
    assert len(found) == 1 and found[0].evidence["kind"] == "pos_weight"


@pytest.mark.parametrize("weights", ["inverse", "sqrt_inverse", "ones", "effective_number"])
def test_weights_that_help_the_rare_classes_are_quiet(weights: str):
    x, y = _data((0.85, 0.1, 0.05))
    c = torch.bincount(y).float()
    w = {"inverse": c.sum() / (3 * c), "sqrt_inverse": c.rsqrt(), "ones": torch.ones(3),
         "effective_number": (1 - 0.999) / (1 - 0.999 ** c)}[weights]
    assert _train(x, y, nn.CrossEntropyLoss(weight=w), sequential=True, sgd=False, k=3) == []


def test_balanced_data_and_right_pos_weight_are_quiet():
    x, y = _data((0.34, 0.33, 0.33))
    w = torch.tensor([1.0, 2.0, 3.0])  # hand-set importance, classes balanced: not an inversion
    assert _train(x, y, nn.CrossEntropyLoss(weight=w), sequential=False, sgd=True, k=3) == []
    x, y = _data((0.92, 0.08), seed=2)
    yf = y.float()
    pw = (len(yf) - yf.sum()) / yf.sum()
    assert _train(x, yf, nn.BCEWithLogitsLoss(pos_weight=pw), sequential=True, sgd=False, k=1) == []
