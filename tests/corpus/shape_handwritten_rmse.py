# expect: shape
# A hand-written RMSE loss on (N, 1) predictions and (N,) targets inside main(), model subclass, Adam.
import torch
import torch.nn as nn


class Regressor(nn.Module):
    def __init__(self, n_in):
        super().__init__()
        self.hidden = nn.Linear(n_in, 64)
        self.out = nn.Linear(64, 1)

    def forward(self, x):
        return self.out(torch.tanh(self.hidden(x)))


def rmse(pred, target):
    return torch.sqrt(torch.mean((pred - target) ** 2) + 1e-8)


def main():
    torch.manual_seed(0)
    X = torch.randn(1024, 6)
    y = 2.0 * X[:, 0] - X[:, 1] ** 2 + 0.1 * torch.randn(1024)
    model = Regressor(6)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    for epoch in range(4):
        for i in range(0, 1024, 64):
            loss = rmse(model(X[i:i + 64]), y[i:i + 64])
            opt.zero_grad()
            loss.backward()
            opt.step()
        print(f"epoch {epoch} rmse {loss.item():.4f}")


if __name__ == "__main__":
    main()
