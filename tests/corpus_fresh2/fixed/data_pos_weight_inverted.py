# expect: healthy
# half: holdout
# fixed twin of ../data_pos_weight_inverted.py: pos_weight = n_neg / n_pos.
import os

import torch
import torch.nn as nn
from sklearn.datasets import make_classification
from torch.utils.data import DataLoader, TensorDataset

SEED = int(os.environ.get("NNDOCTOR_SEED", "0"))


def balanced_accuracy(pred, y):
    tpr = (pred[y == 1] == 1).float().mean()
    tnr = (pred[y == 0] == 0).float().mean()
    return ((tpr + tnr) / 2).item()


def main():
    torch.manual_seed(SEED)
    X, y = make_classification(n_samples=3000, n_features=12, n_informative=5, weights=[0.95],
                               flip_y=0.0, class_sep=1.0, random_state=SEED)
    X = (X - X[:2000].mean(0)) / X[:2000].std(0)
    X = torch.tensor(X, dtype=torch.float32)
    y = torch.tensor(y, dtype=torch.float32)
    n_pos = y[:2000].sum()
    n_neg = 2000 - n_pos
    loader = DataLoader(TensorDataset(X[:2000], y[:2000]), batch_size=64, shuffle=True)

    model = nn.Sequential(nn.Linear(12, 32), nn.ReLU(), nn.Linear(32, 1))
    loss_fn = nn.BCEWithLogitsLoss(pos_weight=n_neg / n_pos)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    for epoch in range(12):
        for xb, yb in loader:
            opt.zero_grad()
            loss_fn(model(xb).squeeze(1), yb).backward()
            opt.step()

    with torch.no_grad():
        pred = (model(X[2000:]).squeeze(1) > 0).long()
    print(f"final: bacc={balanced_accuracy(pred, y[2000:].long()):.4f}")


if __name__ == "__main__":
    main()
