# expect: healthy
# half: tune
# source: lookalike of init faults; "zero-init the last BN gamma in each residual block" (Goyal et al. 2017, torchvision's zero_init_residual)
# fault: none. The last BatchNorm of each residual block starts at gamma=0, so every block starts as the identity; the skip path carries the signal and the gammas learn.
import os

import torch
import torch.nn as nn
import torch.nn.functional as F
from sklearn.datasets import load_digits

SEED = int(os.environ.get("NNDOCTOR_SEED", "0"))


class Block(nn.Module):
    def __init__(self, width):
        super().__init__()
        self.fc1, self.bn1 = nn.Linear(width, width), nn.BatchNorm1d(width)
        self.fc2, self.bn2 = nn.Linear(width, width), nn.BatchNorm1d(width)
        nn.init.zeros_(self.bn2.weight)

    def forward(self, x):
        h = F.relu(self.bn1(self.fc1(x)))
        return F.relu(x + self.bn2(self.fc2(h)))


class ResMLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Linear(64, 48)
        self.blocks = nn.Sequential(Block(48), Block(48), Block(48))
        self.head = nn.Linear(48, 10)

    def forward(self, x):
        return self.head(self.blocks(F.relu(self.stem(x))))


def main():
    torch.manual_seed(SEED)
    X, y = load_digits(return_X_y=True)
    X = torch.tensor(X / 16.0, dtype=torch.float32)
    y = torch.tensor(y)
    perm = torch.randperm(len(X))
    tr, te = perm[:1400], perm[1400:]
    model = ResMLP()
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    for epoch in range(5):
        model.train()
        order = tr[torch.randperm(len(tr))]
        for i in range(0, len(order), 50):
            b = order[i:i + 50]
            opt.zero_grad()
            F.cross_entropy(model(X[b]), y[b]).backward()
            opt.step()
    model.eval()
    with torch.no_grad():
        acc = (model(X[te]).argmax(1) == y[te]).float().mean().item()
    print(f"final: acc={acc:.4f}")


if __name__ == "__main__":
    main()
