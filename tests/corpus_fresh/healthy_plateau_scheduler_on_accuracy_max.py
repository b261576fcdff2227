# expect: healthy
# half: holdout
# source: lookalike of lr faults; ReduceLROnPlateau(mode='max') stepped with validation accuracy (PyTorch docs example), short patience so the lr does drop during the run
# fault: none. The lr is cut when validation accuracy stalls; the drops late in the run are intended.
import os

import torch
import torch.nn as nn
from sklearn.datasets import load_wine

SEED = int(os.environ.get("NNDOCTOR_SEED", "0"))


def main():
    torch.manual_seed(SEED)
    X, y = load_wine(return_X_y=True)
    perm = torch.randperm(len(X)).numpy()
    X, y = X[perm], y[perm]
    X = (X - X[:110].mean(0)) / X[:110].std(0)
    X = torch.tensor(X, dtype=torch.float32)
    y = torch.tensor(y)
    tr, va, te = slice(0, 110), slice(110, 140), slice(140, None)
    model = nn.Sequential(nn.Linear(13, 32), nn.ReLU(), nn.Linear(32, 3))
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, mode="max", patience=3, factor=0.5)
    for epoch in range(40):
        model.train()
        for i in range(0, 110, 22):
            xb, yb = X[tr][i:i + 22], y[tr][i:i + 22]
            opt.zero_grad()
            nn.functional.cross_entropy(model(xb), yb).backward()
            opt.step()
        model.eval()
        with torch.no_grad():
            val_acc = (model(X[va]).argmax(1) == y[va]).float().mean().item()
        sched.step(val_acc)
    with torch.no_grad():
        acc = (model(X[te]).argmax(1) == y[te]).float().mean().item()
    print(f"final: acc={acc:.4f}")


if __name__ == "__main__":
    main()
