# expect: healthy
# half: holdout
# fixed twin of ../labels_shifted_by_header_row.py: features and labels are read from the same rows.
import os

import numpy as np
import torch
import torch.nn as nn
from sklearn.datasets import load_breast_cancer
from torch.utils.data import DataLoader, TensorDataset

SEED = int(os.environ.get("NNDOCTOR_SEED", "0"))


def read_table():
    X, y = load_breast_cancer(return_X_y=True)
    rng = np.random.default_rng(SEED)
    order = rng.permutation(len(y))
    X, y = X[order], y[order]
    features = X[:-1]
    labels = y[:-1]
    return features, labels


def main():
    torch.manual_seed(SEED)
    X, y = read_table()
    mu, sd = X[:450].mean(0), X[:450].std(0)
    X = torch.tensor((X - mu) / sd, dtype=torch.float32)
    y = torch.tensor(y, dtype=torch.float32)
    loader = DataLoader(TensorDataset(X[:450], y[:450]), batch_size=30, shuffle=True)
    model = nn.Sequential(nn.Linear(30, 16), nn.ReLU(), nn.Linear(16, 1))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    crit = nn.BCEWithLogitsLoss()
    for epoch in range(10):
        for xb, yb in loader:
            opt.zero_grad()
            crit(model(xb).squeeze(1), yb).backward()
            opt.step()
    with torch.no_grad():
        acc = ((model(X[450:]).squeeze(1) > 0).float() == y[450:]).float().mean().item()
    print(f"final: acc={acc:.4f}")


if __name__ == "__main__":
    main()
