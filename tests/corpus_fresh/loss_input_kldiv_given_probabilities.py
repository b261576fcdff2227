# expect: loss-input
# half: tune
# source: PyTorch forums "Kullback-Leibler divergence loss function giving negative values" (discuss.pytorch.org/t/763: softmax probabilities passed to nn.KLDivLoss, which expects log-probabilities)
# fault: the student's softmax probabilities (not log-probabilities) go into KLDivLoss; the loss is negative, no longer a divergence, and its gradient ignores how wrong the prediction is.
import os

import torch
import torch.nn as nn
import torch.nn.functional as F
from sklearn.datasets import load_digits

SEED = int(os.environ.get("NNDOCTOR_SEED", "0"))


class Student(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(64, 48)
        self.fc2 = nn.Linear(48, 10)

    def forward(self, x):
        return F.softmax(self.fc2(F.relu(self.fc1(x))), dim=1)


def main():
    torch.manual_seed(SEED)
    X, y = load_digits(return_X_y=True)
    X = torch.tensor(X / 16.0, dtype=torch.float32)
    y = torch.tensor(y)
    perm = torch.randperm(len(X))
    tr, te = perm[:1400], perm[1400:]
    soft = F.one_hot(y, 10).float() * 0.9 + 0.01        # smoothed targets, rows sum to 1
    model = Student()
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    kl = nn.KLDivLoss(reduction="batchmean")
    for epoch in range(3):
        order = tr[torch.randperm(len(tr))]
        for i in range(0, len(order), 32):
            b = order[i:i + 32]
            opt.zero_grad()
            loss = kl(model(X[b]), soft[b])
            loss.backward()
            opt.step()
    with torch.no_grad():
        acc = (model(X[te]).argmax(1) == y[te]).float().mean().item()
    print(f"final: acc={acc:.4f}")


if __name__ == "__main__":
    main()
