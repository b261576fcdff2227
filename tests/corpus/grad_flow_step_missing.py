# expect: grad-flow
# The loop calls loss.backward() and scheduler.step() but never optimizer.step(): the weights never change.
import torch
import torch.nn as nn
import torch.nn.functional as F
from sklearn.datasets import load_iris


def main():
    torch.manual_seed(0)
    X, y = load_iris(return_X_y=True)
    X = torch.tensor(X, dtype=torch.float32)
    X = (X - X.mean(0)) / X.std(0)
    y = torch.tensor(y)
    model = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 3))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=4, gamma=0.5)
    for epoch in range(12):
        perm = torch.randperm(len(X))
        for i in range(0, len(X), 30):
            idx = perm[i:i + 30]
            optimizer.zero_grad()
            loss = F.cross_entropy(model(X[idx]), y[idx])
            loss.backward()
        scheduler.step()
        if epoch % 4 == 0:
            print(f"epoch {epoch} loss {loss.item():.4f}")


if __name__ == "__main__":
    main()
