# expect: healthy
# Healthy twin: a small hand-written L2 penalty (lam=1e-4 times sum(p.pow(2).sum())) added to the cross-entropy (nn.Module, Adam): it stays a tiny fraction of the data loss.
import torch
import torch.nn as nn
import torch.nn.functional as F
from sklearn.datasets import load_digits


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(64, 128)
        self.fc2 = nn.Linear(128, 10)

    def forward(self, x):
        return self.fc2(F.relu(self.fc1(x)))


def main():
    torch.manual_seed(0)
    X, y = load_digits(return_X_y=True)
    X = torch.tensor(X, dtype=torch.float32) / 16.0
    y = torch.tensor(y)
    model = Net()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    lam = 1e-4
    for epoch in range(3):
        perm = torch.randperm(len(X))
        for i in range(0, len(X), 64):
            idx = perm[i:i + 64]
            l2 = sum(p.pow(2).sum() for p in model.parameters())
            loss = F.cross_entropy(model(X[idx]), y[idx]) + lam * l2
            opt.zero_grad()
            loss.backward()
            opt.step()
        print(f"epoch {epoch} loss {loss.item():.4f}")


if __name__ == "__main__":
    main()
