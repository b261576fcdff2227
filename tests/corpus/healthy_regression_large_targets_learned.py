# expect: healthy
# Targets with a std of ~60 (raw units) regressed with MSE by a linear model and SGD: the loss falls far below
# the variance of the targets, so their scale did not stop the model from learning.
import torch
import torch.nn as nn


def main():
    torch.manual_seed(0)
    X = torch.randn(640, 6)
    y = 60.0 * (X @ torch.randn(6, 1)) / 2.5 + 2.0 * torch.randn(640, 1)
    model = nn.Linear(6, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    crit = nn.MSELoss()
    for epoch in range(6):
        for i in range(0, 640, 32):
            opt.zero_grad()
            loss = crit(model(X[i:i + 32]), y[i:i + 32])
            loss.backward()
            opt.step()
    print(f"final: mse={loss.item():.4g}")


if __name__ == "__main__":
    main()
