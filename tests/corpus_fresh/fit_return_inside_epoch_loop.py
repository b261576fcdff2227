# expect: fit
# half: holdout
# source: Stack Overflow "model does not improve with more epochs" (the `return` of a train() function indented inside the epoch loop, so only one epoch ever runs)
# fault: `return model` sits inside `for epoch in range(40)`; training stops after the first epoch and the small-lr SGD model is left badly underfit.
import os

import torch
import torch.nn as nn
from sklearn.datasets import load_breast_cancer
from torch.utils.data import DataLoader, TensorDataset

SEED = int(os.environ.get("NNDOCTOR_SEED", "0"))


def train(model, loader, epochs=40):
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    loss_fn = nn.BCEWithLogitsLoss()
    for epoch in range(epochs):
        for xb, yb in loader:
            opt.zero_grad()
            loss_fn(model(xb).squeeze(1), yb).backward()
            opt.step()
        return model
    return model


def main():
    torch.manual_seed(SEED)
    X, y = load_breast_cancer(return_X_y=True)
    perm = torch.randperm(len(X)).numpy()
    X, y = X[perm], y[perm]
    X = (X - X[:450].mean(0)) / X[:450].std(0)
    X = torch.tensor(X, dtype=torch.float32)
    y = torch.tensor(y, dtype=torch.float32)
    loader = DataLoader(TensorDataset(X[:450], y[:450]), batch_size=64, shuffle=True)
    model = train(nn.Sequential(nn.Linear(30, 16), nn.Tanh(), nn.Linear(16, 1)), loader)
    with torch.no_grad():
        acc = ((model(X[450:]).squeeze(1) > 0).float() == y[450:]).float().mean().item()
    print(f"final: acc={acc:.4f}")


if __name__ == "__main__":
    main()
