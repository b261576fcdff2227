# expect: healthy
# GRU one-step-ahead forecaster on noisy sine waves: last hidden state -> (N, 1) prediction, MSE against (N, 1) targets.
import math

import torch
import torch.nn as nn


def make_windows(n, window=20):
    t0 = torch.rand(n, 1) * 2 * math.pi
    freq = 0.2 + 0.3 * torch.rand(n, 1)
    t = torch.arange(window + 1).float().unsqueeze(0)
    series = torch.sin(t0 + freq * t) + 0.05 * torch.randn(n, window + 1)
    return series[:, :window].unsqueeze(-1), series[:, window:]       # (n, window, 1), (n, 1)


class Forecaster(nn.Module):
    def __init__(self, hidden=32):
        super().__init__()
        self.gru = nn.GRU(1, hidden, batch_first=True)
        self.out = nn.Linear(hidden, 1)

    def forward(self, x):
        _, h = self.gru(x)
        return self.out(h[-1])


def main():
    torch.manual_seed(0)
    x_train, y_train = make_windows(1024)
    x_val, y_val = make_windows(256)
    model = Forecaster()
    opt = torch.optim.Adam(model.parameters(), lr=5e-3)
    criterion = nn.MSELoss()
    for epoch in range(5):
        for i in range(0, 1024, 32):
            opt.zero_grad()
            loss = criterion(model(x_train[i:i + 32]), y_train[i:i + 32])
            loss.backward()
            opt.step()
        with torch.no_grad():
            val = criterion(model(x_val), y_val).item()
        print(f"epoch {epoch}: train mse {loss.item():.4f} val mse {val:.4f}")
    print(f"final loss {loss.item():.4f} val mse {val:.4f} (target variance {y_val.var().item():.3f})")


if __name__ == "__main__":
    main()
