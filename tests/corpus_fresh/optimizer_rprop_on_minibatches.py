# expect: optimizer
# half: tune
# source: DeepFD / AUTOTRAINER fault class "wrong optimizer" (Rprop, a full-batch method, used on small noisy mini-batches; forum "Rprop does not converge with mini-batches")
# fault: Rprop adapts each step size from the SIGN of successive gradients; mini-batch noise flips the signs, the step sizes shrink and grow erratically and the classifier stalls.
import os

import torch
import torch.nn as nn
from sklearn.datasets import load_digits
from torch.utils.data import DataLoader, TensorDataset

SEED = int(os.environ.get("NNDOCTOR_SEED", "0"))


class MLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10))

    def forward(self, x):
        return self.net(x)


def main():
    torch.manual_seed(SEED)
    X, y = load_digits(return_X_y=True)
    X = torch.tensor(X / 16.0, dtype=torch.float32)
    y = torch.tensor(y)
    perm = torch.randperm(len(X))
    tr, te = perm[:1400], perm[1400:]
    loader = DataLoader(TensorDataset(X[tr], y[tr]), batch_size=8, shuffle=True)
    model = MLP()
    opt = torch.optim.Rprop(model.parameters())
    loss_fn = nn.CrossEntropyLoss()
    for epoch in range(3):
        for xb, yb in loader:
            opt.zero_grad()
            loss_fn(model(xb), yb).backward()
            opt.step()
    with torch.no_grad():
        acc = (model(X[te]).argmax(1) == y[te]).float().mean().item()
    print(f"final: acc={acc:.4f}")


if __name__ == "__main__":
    main()
