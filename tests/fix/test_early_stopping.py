"""Overfitting seen on a precise validation curve (the whole validation set each epoch, many epochs):
its minimum a few epochs wide is found (it was flattened by a running median over a sixth of the
run), so fit.overfitting names the best step and the early-stopping remedy's re-run ends with the
weights of that step: the script's final test metric like its fixed twin's (trained that long).
Healthy runs with a precise validation curve that falls and flattens stay quiet."""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from helpers import remedied
from torch.utils.data import DataLoader, TensorDataset

from nndoctor.monitor import Observer
from nndoctor.monitor.checks.fit import Fit, smoothing_window
from nndoctor.monitor.checks.loss_curve import LossCurve

CHECKS = [Fit, LossCurve]


def _regression(n: int, seed: int = 0, d: int = 10) -> tuple[torch.Tensor, ...]:
    """Noisy linear targets: ``n`` training rows, 400 validation and 400 test rows."""
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(d, generator=g)

    def make(m: int) -> tuple[torch.Tensor, torch.Tensor]:
        x = torch.randn(m, d, generator=g)
        return x, x @ w / d ** 0.5 + 0.5 * torch.randn(m, generator=g)

    return (*make(n), *make(400), *make(400))


def _sequential_adam(epochs: int, n: int = 100, width: int = 256) -> float:
    """A wide Sequential MLP, Adam, manual slices, nn.MSELoss validated every epoch; test MSE."""
    xtr, ytr, xva, yva, xte, yte = _regression(n)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(10, width), nn.ReLU(), nn.Linear(width, width), nn.ReLU(), nn.Linear(width, 1))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = nn.MSELoss()
    for _ in range(epochs):
        model.train()
        for i in range(0, n, 20):
            opt.zero_grad()
            loss_fn(model(xtr[i:i + 20]).squeeze(1), ytr[i:i + 20]).backward()
            opt.step()
        model.eval()
        with torch.no_grad():
            loss_fn(model(xva).squeeze(1), yva)
    with torch.no_grad():
        return float(loss_fn(model(xte).squeeze(1), yte))


class _Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.hidden = nn.ModuleList([nn.Linear(10, 200), nn.Linear(200, 200)])
        self.head = nn.Linear(200, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.hidden:
            x = torch.relu(layer(x))
        return self.head(x)


def _subclass_loader_sgd(epochs: int, n: int = 100) -> float:
    """A subclassed model, a DataLoader, SGD with momentum; validation in batches of the loader
    (F.mse_loss per batch, averaged by the script); test MSE."""
    xtr, ytr, xva, yva, xte, yte = _regression(n, seed=1)
    torch.manual_seed(1)
    model = _Net()
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    train = DataLoader(TensorDataset(xtr, ytr[:, None]), batch_size=25, shuffle=True)
    val = DataLoader(TensorDataset(xva, yva[:, None]), batch_size=200)
    for _ in range(epochs):
        for xb, yb in train:
            loss = F.mse_loss(model(xb), yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
        with torch.no_grad():
            sum(F.mse_loss(model(xb), yb).item() for xb, yb in val) / len(val)
    with torch.no_grad():
        return float(F.mse_loss(model(xte), yte[:, None]))


def _classifier_in_main(epochs: int, n: int = 60) -> float:
    """Noisy 4-class blobs, a wide classifier, AdamW without decay, cross-entropy validation from a
    helper function; test cross-entropy (the metric a script would print as its final loss)."""
    g = torch.Generator().manual_seed(2)
    centres = torch.randn(4, 16, generator=g) * 0.6

    def blobs(m: int) -> tuple[torch.Tensor, torch.Tensor]:
        y = torch.randint(0, 4, (m,), generator=g)
        return centres[y] + torch.randn(m, 16, generator=g), y

    (xtr, ytr), (xva, yva), (xte, yte) = blobs(n), blobs(400), blobs(400)

    def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
        model.eval()
        with torch.no_grad():
            out = F.cross_entropy(model(x), y).item()
        model.train()
        return out

    def main() -> float:
        torch.manual_seed(2)
        model = nn.Sequential(nn.Linear(16, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, 4))
        opt = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=0.0)
        for _ in range(epochs):
            for i in range(0, n, 15):
                opt.zero_grad()
                F.cross_entropy(model(xtr[i:i + 15]), ytr[i:i + 15]).backward()
                opt.step()
            evaluate(model, xva, yva)
        return evaluate(model, xte, yte)

    return main()


#: (script, the epochs it trains for, the epochs its fixed twin trains for)
STYLES: list[tuple[Callable[[int], float], int, int]] = [
    (_sequential_adam, 150, 8),
    (_subclass_loader_sgd, 150, 8),
    (_classifier_in_main, 100, 6),
]


def _overfitting(script: Callable[[int], float], epochs: int) -> dict[str, Any]:
    with Observer(checks=CHECKS) as obs:
        script(epochs)
    hits = [f.to_dict() for f in obs.findings if f.code == "fit.overfitting"]
    assert hits, [f.code for f in obs.findings]
    return hits[0]


@pytest.mark.parametrize("script, epochs, twin_epochs", STYLES, ids=[s[0].__name__ for s in STYLES])
def test_overfitting_on_a_precise_validation_curve_is_found_and_stopping_at_its_best_step_works(
        script: Callable[[int], float], epochs: int, twin_epochs: int) -> None:
    finding = _overfitting(script, epochs)
    best = finding["evidence"]["best_step"]
    assert isinstance(best, int) and best > 0
    bug, twin = script(epochs), script(twin_epochs)
    assert twin < 0.95 * bug, (bug, twin)  # the long run overfits: its fixed twin is clearly better
    with remedied(finding):
        fixed = script(epochs)
    assert bug - fixed >= 0.9 * (bug - twin), (bug, fixed, twin)


def test_a_precise_healthy_validation_curve_that_falls_and_flattens_is_quiet() -> None:
    """Enough data for a narrower net, trained as long as it helps: the validation loss (0.295 -> 0.273 ->
    0.275 over 15 epochs) falls, then flattens within noise-free wobbles (no 10% rise)."""
    with Observer(checks=CHECKS) as obs:
        _sequential_adam(15, n=2000, width=64)
    assert not [f for f in obs.findings if f.code == "fit.overfitting"]


def test_the_smoothing_follows_the_curve_noise() -> None:
    rng = np.random.default_rng(0)
    level = np.concatenate([np.linspace(1.0, 0.4, 20), np.linspace(0.4, 0.5, 280)])
    assert smoothing_window(level + 0.001 * rng.standard_normal(300)) == 3   # the whole validation set
    assert smoothing_window(level + 0.2 * rng.standard_normal(300)) == 50    # one small batch per evaluation
    assert smoothing_window(level[:10]) == 1                                   # too few to smooth
