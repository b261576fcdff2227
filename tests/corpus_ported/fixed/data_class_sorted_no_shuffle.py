# expect: healthy
# half: tune
# fixed twin of ../data_class_sorted_no_shuffle.py: the DataLoader shuffles.
import os

import torch
import torch.nn as nn
from sklearn.datasets import load_iris
from torch.utils.data import DataLoader, TensorDataset

SEED = int(os.environ.get("NNDOCTOR_SEED", "0"))


def main():
    torch.manual_seed(SEED)
    X, y = load_iris(return_X_y=True)          # already sorted by class
    X = torch.tensor((X - X.mean(0)) / X.std(0), dtype=torch.float32)
    y = torch.tensor(y)
    test_mask = torch.zeros(150, dtype=torch.bool)
    test_mask[torch.randperm(150)[:40]] = True
    train_ds = TensorDataset(X[~test_mask], y[~test_mask])
    loader = DataLoader(train_ds, batch_size=10, shuffle=True)
    model = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 3))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    for epoch in range(15):
        for xb, yb in loader:
            opt.zero_grad()
            nn.functional.cross_entropy(model(xb), yb).backward()
            opt.step()
    with torch.no_grad():
        acc = (model(X[test_mask]).argmax(1) == y[test_mask]).float().mean().item()
    print(f"final: acc={acc:.4f}")


if __name__ == "__main__":
    main()
