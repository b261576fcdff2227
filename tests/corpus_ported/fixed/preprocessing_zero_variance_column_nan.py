# expect: healthy
# half: tune
# fixed twin of ../preprocessing_zero_variance_column_nan.py: a zero std is replaced by 1 before dividing.
import os

import numpy as np
import torch
import torch.nn as nn
from sklearn.datasets import make_classification
from torch.utils.data import DataLoader, TensorDataset

SEED = int(os.environ.get("NNDOCTOR_SEED", "0"))


def load():
    X, y = make_classification(n_samples=800, n_features=10, n_informative=6, random_state=SEED)
    X = np.hstack([X, np.full((len(X), 1), 3.0)])      # a sensor that never changes
    mean, std = X[:600].mean(0), X[:600].std(0)
    std[std == 0] = 1.0
    X = (X - mean) / std
    return X.astype(np.float32), y


class Net(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.fc1 = nn.Linear(d, 32)
        self.fc2 = nn.Linear(32, 2)

    def forward(self, x):
        return self.fc2(torch.relu(self.fc1(x)))


def main():
    torch.manual_seed(SEED)
    X, y = load()
    X, y = torch.from_numpy(X), torch.from_numpy(y)
    loader = DataLoader(TensorDataset(X[:600], y[:600]), batch_size=50, shuffle=True)
    model = Net(X.shape[1])
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    crit = nn.CrossEntropyLoss()
    for epoch in range(8):
        model.train()
        for xb, yb in loader:
            opt.zero_grad()
            loss = crit(model(xb), yb)
            loss.backward()
            opt.step()
    model.eval()
    with torch.no_grad():
        acc = (model(X[600:]).argmax(1) == y[600:]).float().mean().item()
    print(f"final: acc={acc:.4f}")


if __name__ == "__main__":
    main()
