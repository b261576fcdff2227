# expect: activation
# half: tune
# source: Stack Overflow "network does not learn with softmax activation in hidden layers" (Keras/PyTorch beginners using softmax between hidden layers; DeepFD fault class "wrong activation")
# fault: the hidden layers use nn.Softmax(dim=1) as their activation; each 64-unit layer outputs values summing to 1 (~0.016 each), the signal and its gradient are squashed and SGD barely learns.
import os

import torch
import torch.nn as nn
from sklearn.datasets import load_digits

SEED = int(os.environ.get("NNDOCTOR_SEED", "0"))


def build():
    return nn.Sequential(
        nn.Linear(64, 64), nn.Softmax(dim=1),
        nn.Linear(64, 64), nn.Softmax(dim=1),
        nn.Linear(64, 10),
    )


def main():
    torch.manual_seed(SEED)
    X, y = load_digits(return_X_y=True)
    X = torch.tensor(X / 16.0, dtype=torch.float32)
    y = torch.tensor(y)
    perm = torch.randperm(len(X))
    tr, te = perm[:1400], perm[1400:]
    model = build()
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    loss_fn = nn.CrossEntropyLoss()
    for epoch in range(5):
        order = tr[torch.randperm(len(tr))]
        for i in range(0, len(order), 50):
            b = order[i:i + 50]
            opt.zero_grad()
            loss_fn(model(X[b]), y[b]).backward()
            opt.step()
    with torch.no_grad():
        acc = (model(X[te]).argmax(1) == y[te]).float().mean().item()
    print(f"final: acc={acc:.4f}")


if __name__ == "__main__":
    main()
