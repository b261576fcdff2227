# expect: healthy
# half: holdout
# fixed twin of ../data_debug_subset_left_in.py: the debugging subset line is removed.
import os

import torch
import torch.nn as nn
import torch.nn.functional as F
from sklearn.datasets import load_digits

SEED = int(os.environ.get("NNDOCTOR_SEED", "0"))


class ConvNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2))
        self.classifier = nn.Linear(16 * 16, 10)

    def forward(self, x):
        return self.classifier(self.features(x).flatten(1))


def main():
    torch.manual_seed(SEED)
    X, y = load_digits(return_X_y=True)
    X = torch.tensor(X / 16.0, dtype=torch.float32).view(-1, 1, 8, 8)
    y = torch.tensor(y)
    perm = torch.randperm(len(X))
    X_train, y_train = X[perm[:1400]], y[perm[:1400]]
    X_test, y_test = X[perm[1400:]], y[perm[1400:]]
    model = ConvNet()
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    steps = 0
    while steps < 120:
        order = torch.randperm(len(X_train))
        for i in range(0, len(order), 32):
            b = order[i:i + 32]
            opt.zero_grad()
            F.cross_entropy(model(X_train[b]), y_train[b]).backward()
            opt.step()
            steps += 1
    with torch.no_grad():
        acc = (model(X_test).argmax(1) == y_test).float().mean().item()
    print(f"final: acc={acc:.4f}")


if __name__ == "__main__":
    main()
