# expect: data
# half: tune
# source: Stack Overflow / decodetrail.com "Why does my CNN predict only one class?" (heavily imbalanced classes trained with an unweighted loss)
# fault: 3% positives and a plain BCE loss: the classifier settles on "always negative" and the balanced accuracy stays near 0.5.
import os

import numpy as np
import torch
import torch.nn as nn
from sklearn.datasets import make_classification
from torch.utils.data import DataLoader, TensorDataset

SEED = int(os.environ.get("NNDOCTOR_SEED", "0"))


def balanced_accuracy(pred, y):
    return 0.5 * ((pred[y == 1] == 1).float().mean() + (pred[y == 0] == 0).float().mean()).item()


def main():
    torch.manual_seed(SEED)
    X, y = make_classification(n_samples=2000, n_features=12, n_informative=4, weights=[0.97, 0.03],
                               class_sep=1.2, flip_y=0.0, random_state=SEED)
    X = torch.tensor(X, dtype=torch.float32)
    y = torch.tensor(y, dtype=torch.float32)
    loader = DataLoader(TensorDataset(X[:1500], y[:1500]), batch_size=100, shuffle=True)
    model = nn.Sequential(nn.Linear(12, 16), nn.ReLU(), nn.Linear(16, 1))
    pos_weight = None
    criterion = nn.BCEWithLogitsLoss(pos_weight=pos_weight)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    for epoch in range(6):
        for xb, yb in loader:
            opt.zero_grad()
            criterion(model(xb).squeeze(1), yb).backward()
            opt.step()
    with torch.no_grad():
        pred = (model(X[1500:]).squeeze(1) > 0).float()
    print(f"final: bacc={balanced_accuracy(pred, y[1500:]):.4f}")


if __name__ == "__main__":
    main()
