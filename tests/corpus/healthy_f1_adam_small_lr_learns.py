# expect: healthy
# Healthy twin of the too-low-lr scripts: Adam at a small lr=2e-4 for a short run (3 epochs, 57 steps) on digits; the updates are small but the loss clearly falls.
import torch
import torch.nn as nn
import torch.nn.functional as F
from sklearn.datasets import load_digits


def main():
    torch.manual_seed(0)
    X, y = load_digits(return_X_y=True)
    X = torch.tensor(X, dtype=torch.float32)
    X = (X - X.mean(0)) / (X.std(0) + 1e-6)
    y = torch.tensor(y)
    model = nn.Sequential(nn.Linear(64, 256), nn.ReLU(), nn.Linear(256, 10))
    opt = torch.optim.Adam(model.parameters(), lr=2e-4)
    for epoch in range(3):
        perm = torch.randperm(len(X))
        for i in range(0, len(X) - 95, 96):
            idx = perm[i:i + 96]
            loss = F.cross_entropy(model(X[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
        print(f"epoch {epoch} loss {loss.item():.4f}")


if __name__ == "__main__":
    main()
