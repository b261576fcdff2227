# expect: regularization
# A "sparsity" L1 penalty l1 = sum(p.abs().sum()) added to an MSE loss with weight 0.2 (nn.Module subclass, Adam, main()): the penalty is several times the data loss, the regression never fits.
import torch
import torch.nn as nn
import torch.nn.functional as F


class Regressor(nn.Module):
    def __init__(self):
        super().__init__()
        self.hidden = nn.Linear(10, 64)
        self.out = nn.Linear(64, 1)

    def forward(self, x):
        return self.out(torch.tanh(self.hidden(x)))


def main():
    torch.manual_seed(1)
    X = torch.randn(2048, 10)
    y = (X[:, :3] @ torch.tensor([1.5, -2.0, 1.0]) + 0.5 * torch.sin(3 * X[:, 3])).unsqueeze(1)
    model = Regressor()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    for epoch in range(4):
        for i in range(0, len(X), 64):
            pred = model(X[i:i + 64])
            l1 = sum(p.abs().sum() for p in model.parameters())
            loss = F.mse_loss(pred, y[i:i + 64]) + 0.2 * l1
            opt.zero_grad()
            loss.backward()
            opt.step()
        print(f"epoch {epoch} loss {loss.item():.4f}")


if __name__ == "__main__":
    main()
