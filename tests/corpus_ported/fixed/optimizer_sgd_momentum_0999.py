# expect: healthy
# half: holdout
# fixed twin of ../optimizer_sgd_momentum_0999.py: momentum 0.9.
import os

import torch
import torch.nn as nn
import torch.nn.functional as F
from sklearn.datasets import load_iris

SEED = int(os.environ.get("NNDOCTOR_SEED", "0"))


def main():
    torch.manual_seed(SEED)
    X, y = load_iris(return_X_y=True)
    X = torch.tensor((X - X.mean(0)) / X.std(0), dtype=torch.float32)
    y = torch.tensor(y)
    perm = torch.randperm(150)
    tr, te = perm[:110], perm[110:]
    model = nn.Sequential(nn.Linear(4, 32), nn.ReLU(), nn.Linear(32, 3))
    opt = torch.optim.SGD(model.parameters(), lr=0.02, momentum=0.9)
    for epoch in range(40):
        order = tr[torch.randperm(110)]
        for i in range(0, 110, 22):
            b = order[i:i + 22]
            opt.zero_grad()
            F.cross_entropy(model(X[b]), y[b]).backward()
            opt.step()
    with torch.no_grad():
        acc = (model(X[te]).argmax(1) == y[te]).float().mean().item()
    print(f"final: acc={acc:.4f}")


if __name__ == "__main__":
    main()
