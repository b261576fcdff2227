# expect: loss-curve
# half: holdout
# source: defects4ml / Stack Overflow "my loss goes negative and keeps falling while accuracy drops" (hand-written NLL missing its minus sign)
# fault: the hand-written negative log-likelihood lost its minus sign, so the optimiser drives the true-class log-probability towards -inf.
import os

import torch
import torch.nn as nn
import torch.nn.functional as F
from sklearn.datasets import load_digits

SEED = int(os.environ.get("NNDOCTOR_SEED", "0"))


def nll(logits, target):
    log_p = F.log_softmax(logits, dim=1)
    return log_p.gather(1, target.unsqueeze(1)).mean()


def main():
    torch.manual_seed(SEED)
    X, y = load_digits(return_X_y=True)
    X = torch.tensor(X / 16.0, dtype=torch.float32)
    y = torch.tensor(y)
    perm = torch.randperm(len(X))
    X, y = X[perm], y[perm]
    model = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10))
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    for epoch in range(4):
        for i in range(0, 1400, 50):
            opt.zero_grad()
            loss = nll(model(X[i:i + 50]), y[i:i + 50])
            loss.backward()
            opt.step()
        print(f"epoch {epoch} loss {loss.item():.3f}")
    with torch.no_grad():
        acc = (model(X[1400:]).argmax(1) == y[1400:]).float().mean().item()
    print(f"final: acc={acc:.4f}")


if __name__ == "__main__":
    main()
