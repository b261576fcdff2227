# expect: labels
# Gaussian blobs whose labels came from a careless annotation pass (30% random); DataLoader, nn.Module subclass, SGD; the validation loss rises.
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset


class Classifier(nn.Module):
    def __init__(self, d, k):
        super().__init__()
        self.hidden = nn.Sequential(nn.Linear(d, 128), nn.ReLU(), nn.Linear(128, 128), nn.ReLU())
        self.out = nn.Linear(128, k)

    def forward(self, x):
        return self.out(self.hidden(x))


def main():
    torch.manual_seed(0)
    n, d, k = 1000, 12, 3
    centres = torch.randn(k, d) * 1.5
    y = torch.randint(0, k, (n,))
    x = centres[y] + torch.randn(n, d)
    wrong = torch.rand(n) < 0.3
    y = torch.where(wrong, (y + torch.randint(1, k, (n,))) % k, y)
    train = DataLoader(TensorDataset(x[:700], y[:700]), batch_size=100, shuffle=True)
    model = Classifier(d, k)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    for epoch in range(40):
        for xb, yb in train:
            loss = F.cross_entropy(model(xb), yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
        with torch.no_grad():
            val = F.cross_entropy(model(x[700:]), y[700:]).item()
    print(f"train loss {loss.item():.4f} validation loss {val:.4f}")


if __name__ == "__main__":
    main()
