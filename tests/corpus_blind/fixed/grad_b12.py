# expect: healthy
# half: holdout
# source: blind corpus (the description of this script is kept outside the repository)
# fixed twin of ../grad_b12.py
import os

import torch
import torch.nn as nn
import torch.nn.functional as F
from sklearn.datasets import load_digits
from torch.utils.data import DataLoader, TensorDataset

SEED = int(os.environ.get("NNDOCTOR_SEED", "0"))


class Block(nn.Module):
    def __init__(self, width):
        super().__init__()
        self.fc1 = nn.Linear(width, width)
        self.fc2 = nn.Linear(width, width)

    def forward(self, x):
        return self.fc2(torch.tanh(self.fc1(x)))


class DeepResNet(nn.Module):
    def __init__(self, d_in=64, width=64, depth=16, n_out=10):
        super().__init__()
        self.stem = nn.Linear(d_in, width)
        self.blocks = nn.ModuleList(Block(width) for _ in range(depth))
        self.head = nn.Linear(width, n_out)

    def forward(self, x):
        x = self.stem(x)
        for block in self.blocks:
            x = x + block(x)
        return self.head(x)


def main():
    torch.manual_seed(SEED)
    X, y = load_digits(return_X_y=True)
    X = torch.tensor(X / 16.0, dtype=torch.float32)
    y = torch.tensor(y)
    perm = torch.randperm(len(X))
    tr, te = perm[:1400], perm[1400:]
    loader = DataLoader(TensorDataset(X[tr], y[tr]), batch_size=64, shuffle=True)
    model = DeepResNet()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    for epoch in range(10):
        for xb, yb in loader:
            opt.zero_grad()
            F.cross_entropy(model(xb), yb).backward()
            opt.step()
    with torch.no_grad():
        acc = (model(X[te]).argmax(1) == y[te]).float().mean().item()
    print(f"final: acc={acc:.4f}")


if __name__ == "__main__":
    main()
