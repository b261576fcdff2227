# expect: optimizer
# half: holdout
# source: DeepFD / AUTOTRAINER "oscillating loss" from an extreme momentum (SGD momentum=0.999 instead of 0.9)
# fault: with momentum 0.999 the velocity averages ~1000 steps of stale gradients; the weights overshoot and the loss swings instead of settling.
import os

import torch
import torch.nn as nn
import torch.nn.functional as F
from sklearn.datasets import load_digits

SEED = int(os.environ.get("NNDOCTOR_SEED", "0"))


def main():
    torch.manual_seed(SEED)
    X, y = load_digits(return_X_y=True)
    X = torch.tensor(X / 16.0, dtype=torch.float32)
    y = torch.tensor(y)
    perm = torch.randperm(len(X))
    tr, te = perm[:1400], perm[1400:]
    model = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10))
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.999)
    for epoch in range(5):
        order = tr[torch.randperm(1400)]
        for i in range(0, 1400, 50):
            b = order[i:i + 50]
            opt.zero_grad()
            F.cross_entropy(model(X[b]), y[b]).backward()
            opt.step()
    with torch.no_grad():
        acc = (model(X[te]).argmax(1) == y[te]).float().mean().item()
    print(f"final: acc={acc:.4f}")


if __name__ == "__main__":
    main()
