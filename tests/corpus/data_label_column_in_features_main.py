# expect: data
# The feature matrix is built from the whole table, label column included (np.c_[X, y] then scaled): the model copies it.
import numpy as np
import torch
import torch.nn as nn
from sklearn.datasets import load_breast_cancer
from torch.utils.data import DataLoader, TensorDataset


def load_table():
    data = load_breast_cancer()
    table = np.c_[data.data, data.target]          # features + label, as read from one CSV
    return table, data.target


def main():
    torch.manual_seed(0)
    table, target = load_table()
    table = (table - table.mean(0)) / table.std(0)   # standardise every column, the label's too
    X = torch.tensor(table, dtype=torch.float32)
    y = torch.tensor(target, dtype=torch.long)
    perm = torch.randperm(len(X))
    tr, va = perm[:450], perm[450:]
    loader = DataLoader(TensorDataset(X[tr], y[tr]), batch_size=32, shuffle=True)
    model = nn.Sequential(nn.Linear(X.shape[1], 32), nn.ReLU(), nn.Linear(32, 2))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = nn.CrossEntropyLoss()
    for epoch in range(5):
        for xb, yb in loader:
            opt.zero_grad()
            loss = loss_fn(model(xb), yb)
            loss.backward()
            opt.step()
        with torch.no_grad():
            acc = (model(X[va]).argmax(1) == y[va]).float().mean().item()
        print(f"epoch {epoch} loss {loss.item():.4f} val acc {acc:.3f}")


if __name__ == "__main__":
    main()
