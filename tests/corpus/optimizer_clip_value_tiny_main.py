# expect: optimizer
# A regression subclass trained in main() with plain SGD; clip_grad_value_ at 1e-5 caps every gradient element far below its size, so the model barely moves.
import torch
import torch.nn as nn
from torch.nn.utils import clip_grad_value_


class Regressor(nn.Module):
    def __init__(self, d_in):
        super().__init__()
        self.fc1 = nn.Linear(d_in, 32)
        self.fc2 = nn.Linear(32, 1)

    def forward(self, x):
        return self.fc2(torch.tanh(self.fc1(x))).squeeze(-1)


def main():
    torch.manual_seed(0)
    x = torch.randn(3000, 8)
    w = torch.randn(8)
    y = torch.sin(x @ w) + 0.5 * (x[:, 0] ** 2) + 0.05 * torch.randn(3000)
    model = Regressor(8)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.02)
    for epoch in range(6):
        for start in range(0, 3000, 50):
            xb, yb = x[start:start + 50], y[start:start + 50]
            optimizer.zero_grad()
            loss = nn.functional.mse_loss(model(xb), yb)
            loss.backward()
            clip_grad_value_(model.parameters(), clip_value=1e-5)
            optimizer.step()
        print("epoch", epoch, "mse", round(loss.item(), 4))


if __name__ == "__main__":
    main()
