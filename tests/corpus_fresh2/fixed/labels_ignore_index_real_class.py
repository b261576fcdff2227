# expect: healthy
# half: tune
# fixed twin of ../labels_ignore_index_real_class.py: CrossEntropyLoss() without ignore_index (every class is real).
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
    X = (X - X[:130].mean(0)) / X[:130].std(0)
    X = torch.tensor(X, dtype=torch.float32)
    y = torch.tensor(y)
    model = nn.Sequential(nn.Linear(13, 32), nn.ReLU(), nn.Linear(32, 3))
    criterion = nn.CrossEntropyLoss()
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    for epoch in range(30):
        order = torch.randperm(130)
        for i in range(0, 130, 16):
            b = order[i:i + 16]
            opt.zero_grad()
            criterion(model(X[b]), y[b]).backward()
            opt.step()
    with torch.no_grad():
        acc = (model(X[130:]).argmax(1) == y[130:]).float().mean().item()
    print(f"final: acc={acc:.4f}")


if __name__ == "__main__":
    main()
