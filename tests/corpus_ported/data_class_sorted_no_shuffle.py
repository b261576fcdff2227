# expect: data
# half: tune
# source: Stack Overflow "network always predicts the last class" (samples sorted by label and a DataLoader with shuffle=False)
# fault: the training set is ordered by class and never shuffled; each stretch of batches is a single class and the model forgets all but the last ones.
import os

import numpy as np
import torch
import torch.nn as nn
from sklearn.datasets import load_digits
from torch.utils.data import DataLoader, TensorDataset

SEED = int(os.environ.get("NNDOCTOR_SEED", "0"))


def main():
    torch.manual_seed(SEED)
    X, y = load_digits(return_X_y=True)
    rng = np.random.default_rng(SEED)
    idx = rng.permutation(len(y))
    tr, te = idx[:1400], idx[1400:]
    tr = tr[np.argsort(y[tr], kind="stable")]      # exported grouped by class
    X = torch.tensor(X / 16.0, dtype=torch.float32)
    y = torch.tensor(y)
    loader = DataLoader(TensorDataset(X[tr], y[tr]), batch_size=32, shuffle=False)
    model = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    for epoch in range(4):
        for xb, yb in loader:
            opt.zero_grad()
            nn.functional.cross_entropy(model(xb), yb).backward()
            opt.step()
    with torch.no_grad():
        acc = (model(X[te]).argmax(1) == y[te]).float().mean().item()
    print(f"final: acc={acc:.4f}")


if __name__ == "__main__":
    main()
