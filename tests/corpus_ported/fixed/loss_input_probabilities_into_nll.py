# expect: healthy
# half: holdout
# fixed twin of ../loss_input_probabilities_into_nll.py: forward returns F.log_softmax, which NLLLoss expects.
import os

import torch
import torch.nn as nn
import torch.nn.functional as F
from sklearn.datasets import load_digits

SEED = int(os.environ.get("NNDOCTOR_SEED", "0"))


class DigitNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.hidden = nn.Linear(64, 32)
        self.out = nn.Linear(32, 10)

    def forward(self, x):
        return F.log_softmax(self.out(F.relu(self.hidden(x))), dim=1)


def main():
    torch.manual_seed(SEED)
    X, y = load_digits(return_X_y=True)
    X = torch.tensor(X / 16.0, dtype=torch.float32)
    y = torch.tensor(y)
    perm = torch.randperm(len(X))
    X, y = X[perm], y[perm]
    X_tr, y_tr, X_te, y_te = X[:1400], y[:1400], X[1400:], y[1400:]
    model = DigitNet()
    nll = nn.NLLLoss()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
    for epoch in range(3):
        for i in range(0, 1400, 50):
            optimizer.zero_grad()
            loss = nll(model(X_tr[i:i + 50]), y_tr[i:i + 50])
            loss.backward()
            optimizer.step()
    with torch.no_grad():
        acc = (model(X_te).argmax(1) == y_te).float().mean().item()
    print(f"final: acc={acc:.4f}")


if __name__ == "__main__":
    main()
