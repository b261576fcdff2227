# expect: fit
# Noisy-label regression with a big MLP on 64 samples, DataLoader and main(); validation batches show the val loss climbing.
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset


def evaluate(model, loader):
    model.eval()
    total, n = 0.0, 0
    with torch.no_grad():
        for xb, yb in loader:
            total += F.mse_loss(model(xb), yb, reduction="sum").item()
            n += len(xb)
    model.train()
    return total / n


def main():
    torch.manual_seed(0)
    X = torch.rand(600, 4) * 2 - 1
    y = (X[:, :1] * 2).sin() + 0.3 * torch.randn(600, 1)
    train = DataLoader(TensorDataset(X[:64], y[:64]), batch_size=16, shuffle=True)
    val = DataLoader(TensorDataset(X[64:], y[64:]), batch_size=128)
    model = nn.Sequential(nn.Linear(4, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, 1))
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    for epoch in range(60):
        for xb, yb in train:
            opt.zero_grad()
            loss = F.mse_loss(model(xb), yb)
            loss.backward()
            opt.step()
        val_loss = evaluate(model, val)
        if epoch % 10 == 0:
            print(epoch, round(loss.item(), 4), round(val_loss, 4))


if __name__ == "__main__":
    main()
