"""optimizer.recreated-in-loop's remedy: an optimizer rebuilt over the same parameters with the same settings keeps
the state of the one before, so the re-run trains exactly like the twin that builds it once, in three styles; other
optimizers (over other tensors, a second phase at another rate, a new model per fold) are left as written."""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F
from helpers import apply_remedy, finding_of, remedied

from nndoctor.fix.remedies import remedy_for
from nndoctor.monitor.checks.recreated import OptimizerRecreated

_G = torch.Generator().manual_seed(0)
X = torch.randn(256, 6, generator=_G)
Y = (X[:, :2].sum(1) > 0).long()


def _adam_per_batch(once: bool) -> list[float]:
    """Style 1: Adam built inside the batch loop."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 2))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    out = []
    for i in range(40):
        if not once:
            opt = torch.optim.Adam(model.parameters(), lr=1e-2)
        j = (i * 32) % 224
        opt.zero_grad()
        loss = F.cross_entropy(model(X[j:j + 32]), Y[j:j + 32])
        loss.backward()
        opt.step()
        out.append(float(loss))
    return out


def _make(model: nn.Module) -> torch.optim.Optimizer:
    return torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)


def _sgd_per_epoch(once: bool) -> list[float]:
    """Style 2: a helper builds SGD with momentum at every epoch of a DataLoader loop."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 16), nn.Tanh(), nn.Linear(16, 2))
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(X, Y), batch_size=64)
    opt, out = _make(model), []
    for _ in range(8):
        if not once:
            opt = _make(model)
        for xb, yb in loader:
            opt.zero_grad()
            loss = F.cross_entropy(model(xb), yb)
            loss.backward()
            opt.step()
            out.append(float(loss))
    return out


class _Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.body, self.head = nn.Linear(6, 16), nn.Linear(16, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.relu(self.body(x)))

    def optimizer(self) -> torch.optim.Optimizer:
        return torch.optim.AdamW([{"params": self.body.parameters()},
                                  {"params": self.head.parameters(), "weight_decay": 0.0}], lr=5e-3)


def _adamw_groups_per_step(once: bool) -> list[float]:
    """Style 3: a module method builds AdamW with two groups at every step."""
    torch.manual_seed(0)
    model = _Net()
    opt, out = model.optimizer(), []
    for i in range(40):
        opt = opt if once else model.optimizer()
        j = (i * 32) % 224
        model.zero_grad()
        loss = F.cross_entropy(model(X[j:j + 32]), Y[j:j + 32])
        loss.backward()
        opt.step()
        out.append(float(loss))
    return out


STYLES: list[Callable[[bool], list[float]]] = [_adam_per_batch, _sgd_per_epoch, _adamw_groups_per_step]


def test_a_rebuilt_optimizer_keeps_its_state_and_trains_like_the_twin_in_three_styles() -> None:
    for run in STYLES:
        found = finding_of(lambda: run(False), [OptimizerRecreated], "optimizer.recreated-in-loop")  # noqa: B023
        assert found["severity"] == "warning" and remedy_for(found).name == "keep-optimizer-state"  # type: ignore[union-attr]
        bug, twin = run(False), run(True)
        assert bug != twin
        with remedied(found):
            fixed = run(False)
        assert fixed == twin, run.__name__


def _healthy() -> tuple[list[float], ...]:
    torch.manual_seed(0)
    gen, disc = nn.Linear(6, 6), nn.Linear(6, 2)
    out: list[list[float]] = [[], [], []]
    # two optimizers over disjoint tensors with the same settings (a GAN's): each keeps its own state
    og, od = torch.optim.Adam(gen.parameters(), lr=1e-2), torch.optim.Adam(disc.parameters(), lr=1e-2)
    for _ in range(3):
        for _ in range(5):
            og.zero_grad()
            od.zero_grad()
            loss = F.cross_entropy(disc(gen(X[:32])), Y[:32])
            loss.backward()
            og.step()
            od.step()
            out[0].append(float(loss))
    model = nn.Linear(6, 2)
    for lr in (1e-2, 1e-3, 1e-4):  # phases at other rates: each starts fresh
        opt = torch.optim.Adam(model.parameters(), lr=lr)
        for _ in range(5):
            opt.zero_grad()
            loss = F.cross_entropy(model(X[:32]), Y[:32])
            loss.backward()
            opt.step()
            out[1].append(float(loss))
    for _ in range(3):  # a new model per fold
        fold = nn.Linear(6, 2)
        opt = torch.optim.Adam(fold.parameters(), lr=1e-2)
        for _ in range(5):
            opt.zero_grad()
            loss = F.cross_entropy(fold(X[:32]), Y[:32])
            loss.backward()
            opt.step()
            out[2].append(float(loss))
    return tuple(out)


def test_other_optimizers_start_fresh_as_written() -> None:
    plain = _healthy()
    with apply_remedy("optimizer.recreated-in-loop", "opt", optimizer="opt", optimizer_class="Adam", count=3):
        again = _healthy()
    assert again == plain
