# expect: numerics
# half: tune
# source: Stack Overflow "custom normalisation layer returns nan" (per-sample standardisation without epsilon; all-zero padding rows give 0/0)
# fault: a hand-written per-row normalisation divides by x.std(1); the missing-record rows are all zeros, their std is 0 and the loss is NaN from the first batch.
import os

import numpy as np
import torch
import torch.nn as nn
from torch.utils.data import DataLoader, TensorDataset

SEED = int(os.environ.get("NNDOCTOR_SEED", "0"))


class RowNorm(nn.Module):
    def forward(self, x):
        mu = x.mean(1, keepdim=True)
        sd = x.std(1, keepdim=True)
        return (x - mu) / sd


def make_data(rng, n):
    x = rng.normal(size=(n, 24)).astype(np.float32)
    y = (x[:, :12].sum(1) > x[:, 12:].sum(1)).astype(np.int64)
    missing = rng.random(n) < 0.05
    x[missing] = 0.0                                  # records that were never filled in
    return torch.from_numpy(x), torch.from_numpy(y)


def main():
    torch.manual_seed(SEED)
    rng = np.random.default_rng(SEED)
    X, y = make_data(rng, 1200)
    loader = DataLoader(TensorDataset(X[:1000], y[:1000]), batch_size=50, shuffle=True)
    model = nn.Sequential(RowNorm(), nn.Linear(24, 32), nn.ReLU(), nn.Linear(32, 2))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    for epoch in range(6):
        for xb, yb in loader:
            optimizer.zero_grad()
            nn.functional.cross_entropy(model(xb), yb).backward()
            optimizer.step()
    with torch.no_grad():
        acc = (model(X[1000:]).argmax(1) == y[1000:]).float().mean().item()
    print(f"final: acc={acc:.4f}")


if __name__ == "__main__":
    main()
