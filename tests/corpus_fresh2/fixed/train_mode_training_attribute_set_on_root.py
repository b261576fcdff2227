# expect: healthy
# half: tune
# fixed twin of ../train_mode_training_attribute_set_on_root.py: model.eval() / model.train(), which set the mode of every submodule.
import os

import torch
import torch.nn as nn
import torch.nn.functional as F
from sklearn.datasets import load_digits

SEED = int(os.environ.get("NNDOCTOR_SEED", "0"))


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.block = nn.Sequential(nn.Linear(64, 128), nn.BatchNorm1d(128), nn.ReLU(), nn.Dropout(0.5))
        self.out = nn.Linear(128, 10)

    def forward(self, x):
        return self.out(self.block(x))


def evaluate(model, X, y):
    model.eval()
    correct = 0
    with torch.no_grad():
        for i in range(0, len(X), 4):
            correct += (model(X[i:i + 4]).argmax(1) == y[i:i + 4]).sum().item()
    model.train()
    return correct / len(X)


def main():
    torch.manual_seed(SEED)
    X, y = load_digits(return_X_y=True)
    X = torch.tensor(X / 16.0, dtype=torch.float32)
    y = torch.tensor(y)
    perm = torch.randperm(len(X))
    tr, te = perm[:1397], perm[1397:]
    model = Net()
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    for epoch in range(10):
        order = tr[torch.randperm(len(tr))]
        for i in range(0, len(order), 32):
            b = order[i:i + 32]
            opt.zero_grad()
            F.cross_entropy(model(X[b]), y[b]).backward()
            opt.step()
    print(f"final: acc={evaluate(model, X[te], y[te]):.4f}")


if __name__ == "__main__":
    main()
