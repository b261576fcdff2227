# expect: healthy
# half: holdout
# source: blind corpus (the description of this script is kept outside the repository)
# fixed twin of ../activation_b24.py
import os

import torch
import torch.nn as nn
from sklearn.datasets import make_circles
from torch.utils.data import DataLoader, TensorDataset

SEED = int(os.environ.get("NNDOCTOR_SEED", "0"))


def make_model():
    return nn.Sequential(
        nn.Linear(2, 64),
        nn.LeakyReLU(inplace=True),
        nn.Linear(64, 64),
        nn.LeakyReLU(inplace=True),
        nn.Linear(64, 1),
    )


def main():
    torch.manual_seed(SEED)
    X, y = make_circles(n_samples=2000, noise=0.08, factor=0.5, random_state=SEED)
    X = torch.tensor(X, dtype=torch.float32)
    y = torch.tensor(y, dtype=torch.float32)
    loader = DataLoader(TensorDataset(X[:1600], y[:1600]), batch_size=64, shuffle=True)
    model = make_model()
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    loss_fn = nn.BCEWithLogitsLoss()
    for epoch in range(20):
        for xb, yb in loader:
            opt.zero_grad()
            loss_fn(model(xb).squeeze(1), yb).backward()
            opt.step()
    with torch.no_grad():
        acc = ((model(X[1600:]).squeeze(1) > 0).float() == y[1600:]).float().mean().item()
    print(f"final: acc={acc:.4f}")


if __name__ == "__main__":
    main()
