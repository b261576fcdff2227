# expect: healthy
# Multi-label tagging done right: nn.Sigmoid outputs and nn.BCELoss against multi-hot rows (several 1s per row).
import torch
import torch.nn as nn


def main():
    torch.manual_seed(0)
    n, d, k = 1200, 16, 6
    x = torch.randn(n, d)
    w = torch.randn(d, k)
    y = ((x @ w) + 0.3 * torch.randn(n, k) > 0.3).float()
    model = nn.Sequential(nn.Linear(d, 64), nn.ReLU(), nn.Linear(64, k), nn.Sigmoid())
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    bce = nn.BCELoss()
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x[:1000], y[:1000]), batch_size=50,
                                         shuffle=True)
    for epoch in range(5):
        for xb, yb in loader:
            loss = bce(model(xb), yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
    model.eval()
    with torch.no_grad():
        acc = ((model(x[1000:]) > 0.5).float() == y[1000:]).float().mean().item()
    print(f"final loss {loss.item():.4f} per-tag accuracy {acc:.3f}")


if __name__ == "__main__":
    main()
