# expect: optimizer
# half: tune
# source: DeepCrime "change optimizer hyper-parameters" mutation class; SGD's `dampening` (scales the new gradient in the momentum buffer by 1 - dampening) mistaken for a second momentum knob
# fault: SGD(momentum=0.9, dampening=0.9): each gradient enters the momentum buffer as 0.1 * g, cancelling the 10x gain momentum was meant to give; the steps are ~10x smaller than intended and the short run underfits.
import os

import torch
import torch.nn as nn
import torch.nn.functional as F
from sklearn.datasets import load_digits

SEED = int(os.environ.get("NNDOCTOR_SEED", "0"))


class MLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.hidden = nn.Linear(64, 64)
        self.out = nn.Linear(64, 10)

    def forward(self, x):
        return self.out(torch.tanh(self.hidden(x)))


def train(model, X, y, epochs):
    opt = torch.optim.SGD(model.parameters(), lr=0.005, momentum=0.9, dampening=0.9)
    for epoch in range(epochs):
        order = torch.randperm(len(X))
        for i in range(0, len(X), 32):
            b = order[i:i + 32]
            opt.zero_grad()
            F.cross_entropy(model(X[b]), y[b]).backward()
            opt.step()


def main():
    torch.manual_seed(SEED)
    X, y = load_digits(return_X_y=True)
    X = torch.tensor(X / 16.0, dtype=torch.float32)
    y = torch.tensor(y)
    perm = torch.randperm(len(X))
    tr, te = perm[:1400], perm[1400:]
    model = MLP()
    train(model, X[tr], y[tr], epochs=4)
    with torch.no_grad():
        acc = (model(X[te]).argmax(1) == y[te]).float().mean().item()
    print(f"final: acc={acc:.4f}")


if __name__ == "__main__":
    main()
