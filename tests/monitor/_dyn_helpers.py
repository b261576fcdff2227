"""Small training loops shared by the training-dynamics tests (lr, loss-curve, fit, watch)."""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

__all__ = ["blobs", "fit_with_test_loader", "mlp", "train"]


def blobs(n: int = 2048, d: int = 16, classes: int = 4, seed: int = 0, spread: float = 0.7):
    g = torch.Generator().manual_seed(seed)
    centers = torch.randn(classes, d, generator=g) * spread
    y = torch.randint(0, classes, (n,), generator=g)
    return centers[y] + torch.randn(n, d, generator=g), y


def mlp(d: int = 16, classes: int = 4, hidden: int = 64, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(d, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(),
                         nn.Linear(hidden, classes))


def train(model, opt, X, y, steps: int, batch: int = 32, functional: bool = True, sched=None,
          eval_every: int = 0, X_val=None, y_val=None) -> None:
    """A plain loop; evaluates under no_grad every ``eval_every`` steps when given."""
    crit = nn.CrossEntropyLoss()
    n = len(X)
    for i in range(steps):
        j = (i * batch) % (n - batch)
        out = model(X[j:j + batch])
        loss = F.cross_entropy(out, y[j:j + batch]) if functional else crit(out, y[j:j + batch])
        opt.zero_grad()
        loss.backward()
        opt.step()
        if sched is not None:
            sched.step()
        if eval_every and (i + 1) % eval_every == 0:
            model.eval()
            with torch.no_grad():
                crit(model(X_val), y_val)
            model.train()


def fit_with_test_loader(xtr: torch.Tensor, ytr: torch.Tensor, xte: torch.Tensor, yte: torch.Tensor,
                         k: int, epochs: int) -> None:
    """Module loss, DataLoaders, Adam; an evaluation loop computes the loss on the test loader after
    each epoch (an MLP with 32 hidden units over ``xtr``'s features)."""
    model = nn.Sequential(nn.Linear(xtr.shape[1], 32), nn.ReLU(), nn.Linear(32, k))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    loss_fn = nn.CrossEntropyLoss()
    train_loader = DataLoader(TensorDataset(xtr, ytr), batch_size=32, shuffle=True)
    test = DataLoader(TensorDataset(xte, yte), batch_size=64)
    for _ in range(epochs):
        model.train()
        for xb, yb in train_loader:
            opt.zero_grad()
            loss_fn(model(xb), yb).backward()
            opt.step()
        model.eval()
        with torch.no_grad():
            for xb, yb in test:
                loss_fn(model(xb), yb)
