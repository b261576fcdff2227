# expect: healthy
# half: holdout
# fixed twin of ../lr_plateau_scheduler_min_on_accuracy.py: ReduceLROnPlateau(mode='max') for an accuracy.
import os

import torch
import torch.nn as nn
from sklearn.datasets import load_digits
from torch.utils.data import DataLoader, TensorDataset

SEED = int(os.environ.get("NNDOCTOR_SEED", "0"))


def evaluate(model, X, y):
    with torch.no_grad():
        return (model(X).argmax(1) == y).float().mean().item()


def main():
    torch.manual_seed(SEED)
    X, y = load_digits(return_X_y=True)
    X = torch.tensor(X / 16.0, dtype=torch.float32)
    y = torch.tensor(y)
    perm = torch.randperm(len(X))
    tr, va, te = perm[:1100], perm[1100:1400], perm[1400:]
    loader = DataLoader(TensorDataset(X[tr], y[tr]), batch_size=100, shuffle=True)
    model = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.5)
    sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, mode="max", patience=0, factor=0.1)
    loss_fn = nn.CrossEntropyLoss()
    for epoch in range(20):
        for xb, yb in loader:
            opt.zero_grad()
            loss_fn(model(xb), yb).backward()
            opt.step()
        sched.step(evaluate(model, X[va], y[va]))
    print(f"final: acc={evaluate(model, X[te], y[te]):.4f}")


if __name__ == "__main__":
    main()
