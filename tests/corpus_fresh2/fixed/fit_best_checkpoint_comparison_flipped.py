# expect: healthy
# half: holdout
# fixed twin of ../fit_best_checkpoint_comparison_flipped.py: the accuracy tracker starts at -inf and keeps the HIGHEST validation accuracy (`>`).
import copy
import os

import torch
import torch.nn as nn
import torch.nn.functional as F
from sklearn.datasets import load_digits

SEED = int(os.environ.get("NNDOCTOR_SEED", "0"))


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(64, 64)
        self.fc2 = nn.Linear(64, 10)

    def forward(self, x):
        return self.fc2(F.relu(self.fc1(x)))


def main():
    torch.manual_seed(SEED)
    X, y = load_digits(return_X_y=True)
    X = torch.tensor(X / 16.0, dtype=torch.float32)
    y = torch.tensor(y)
    perm = torch.randperm(len(X))
    tr, va, te = perm[:1100], perm[1100:1400], perm[1400:]
    model = Net()
    opt = torch.optim.SGD(model.parameters(), lr=0.02)
    best, best_state = float("-inf"), None
    for epoch in range(15):
        order = tr[torch.randperm(len(tr))]
        for i in range(0, len(order), 32):
            b = order[i:i + 32]
            opt.zero_grad()
            F.cross_entropy(model(X[b]), y[b]).backward()
            opt.step()
        with torch.no_grad():
            val_acc = (model(X[va]).argmax(1) == y[va]).float().mean().item()
        if val_acc > best:
            best, best_state = val_acc, copy.deepcopy(model.state_dict())
    model.load_state_dict(best_state)
    with torch.no_grad():
        acc = (model(X[te]).argmax(1) == y[te]).float().mean().item()
    print(f"final: acc={acc:.4f}")


if __name__ == "__main__":
    main()
