# expect: healthy
# half: holdout
# fixed twin of ../train_mode_eval_without_call.py: model.eval() is called.
import os

import torch
import torch.nn as nn
from sklearn.datasets import load_digits

SEED = int(os.environ.get("NNDOCTOR_SEED", "0"))


class MLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(64, 128), nn.BatchNorm1d(128), nn.ReLU(), nn.Dropout(0.5),
                                  nn.Linear(128, 64), nn.BatchNorm1d(64), nn.ReLU(), nn.Dropout(0.5))
        self.head = nn.Linear(64, 10)

    def forward(self, x):
        return self.head(self.body(x))


def evaluate(model, X, y):
    model.eval()
    correct = 0
    with torch.no_grad():
        for i in range(0, len(X), 4):
            correct += (model(X[i:i + 4]).argmax(1) == y[i:i + 4]).sum().item()
    return correct / len(X)


def main():
    torch.manual_seed(SEED)
    X, y = load_digits(return_X_y=True)
    X = torch.tensor(X / 16.0, dtype=torch.float32)
    y = torch.tensor(y)
    perm = torch.randperm(len(X))
    X, y = X[perm], y[perm]
    model = MLP()
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    for epoch in range(5):
        model.train()
        for i in range(0, 1400, 64):
            opt.zero_grad()
            loss = nn.functional.cross_entropy(model(X[i:i + 64]), y[i:i + 64])
            loss.backward()
            opt.step()
    print(f"final: acc={evaluate(model, X[1400:1796], y[1400:1796]):.4f}")


if __name__ == "__main__":
    main()
