# expect: grad-flow
# half: holdout
# source: blind corpus (the description of this script is kept outside the repository)
import os

import numpy as np
import torch
import torch.nn as nn
from sklearn.datasets import make_moons
from torch.utils.data import DataLoader, TensorDataset

SEED = int(os.environ.get("NNDOCTOR_SEED", "0"))


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.layers = nn.Sequential(nn.Linear(2, 32), nn.ReLU(), nn.Linear(32, 32), nn.ReLU(), nn.Linear(32, 2))

    def forward(self, x):
        return self.layers(x)


def train(model, loader, epochs):
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    loss_fn = nn.CrossEntropyLoss()
    for epoch in range(epochs):
        running = 0.0
        for xb, yb in loader:
            opt.zero_grad()
            loss = loss_fn(model(xb), yb)
            loss.backward()
            running += loss.item()
        opt.step()
    return running / len(loader)


def main():
    torch.manual_seed(SEED)
    X, y = make_moons(n_samples=2000, noise=0.15, random_state=SEED)
    X = torch.tensor(X, dtype=torch.float32)
    y = torch.tensor(y)
    loader = DataLoader(TensorDataset(X[:1600], y[:1600]), batch_size=32, shuffle=True)
    model = Net()
    train(model, loader, epochs=20)
    with torch.no_grad():
        acc = (model(X[1600:]).argmax(1) == y[1600:]).float().mean().item()
    print(f"final: acc={acc:.4f}")


if __name__ == "__main__":
    main()
