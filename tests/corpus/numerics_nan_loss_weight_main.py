# expect: numerics
# The auxiliary-loss weight is the mean of an empty list of past scores (NaN): loss = ce + alpha * reg turns NaN although the batch is clean.
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(10, 32)
        self.fc2 = nn.Linear(32, 3)

    def forward(self, x):
        return self.fc2(F.relu(self.fc1(x)))


def main():
    torch.manual_seed(0)
    x = torch.randn(600, 10)
    y = (x[:, 0] + x[:, 1]).gt(0).long() + (x[:, 2] > 1).long()
    model = Net()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    val_scores: list[float] = []
    alpha = float(np.mean(val_scores)) if val_scores else float("nan")  # meant: a default of 0.1
    for epoch in range(3):
        for i in range(0, 600, 50):
            out = model(x[i:i + 50])
            loss = F.cross_entropy(out, y[i:i + 50]) + alpha * out.pow(2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
        print(f"epoch {epoch} loss {loss.item():.4f}")


if __name__ == "__main__":
    main()
