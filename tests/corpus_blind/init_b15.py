# expect: init
# half: holdout
# source: blind corpus (the description of this script is kept outside the repository)
import os

import torch
import torch.nn as nn
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torch.utils.data import DataLoader, TensorDataset

SEED = int(os.environ.get("NNDOCTOR_SEED", "0"))


def init_weights(m):
    if isinstance(m, nn.Linear):
        std = (2.0 / m.in_features) ** 0.5
        w = torch.randn(m.in_features) * std
        m.weight.data[:] = w
        m.bias.data.zero_()


def main():
    torch.manual_seed(SEED)
    X, y = load_digits(return_X_y=True)
    Xtr, Xte, ytr, yte = train_test_split(X / 16.0, y, test_size=0.25, random_state=SEED)
    ds = TensorDataset(torch.tensor(Xtr, dtype=torch.float32), torch.tensor(ytr))
    loader = DataLoader(ds, batch_size=32, shuffle=True)
    model = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 64), nn.ReLU(), nn.Linear(64, 10))
    model.apply(init_weights)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    for epoch in range(10):
        for xb, yb in loader:
            opt.zero_grad()
            nn.functional.cross_entropy(model(xb), yb).backward()
            opt.step()
    with torch.no_grad():
        pred = model(torch.tensor(Xte, dtype=torch.float32)).argmax(1)
    acc = (pred == torch.tensor(yte)).float().mean().item()
    print(f"final: acc={acc:.4f}")


if __name__ == "__main__":
    main()
