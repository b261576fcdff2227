# expect: healthy
# Wine MLP (subclass, main(), Adam) with residual blocks whose last LayerNorm weight starts at zero (zero_init_residual): each block starts as the identity and learns.
import torch
import torch.nn as nn
import torch.nn.functional as F
from sklearn.datasets import load_wine


class Block(nn.Module):
    def __init__(self, width):
        super().__init__()
        self.fc, self.norm = nn.Linear(width, width), nn.LayerNorm(width)
        nn.init.zeros_(self.norm.weight)

    def forward(self, x):
        return F.relu(x + self.norm(self.fc(x)))


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Linear(13, 32)
        self.blocks = nn.Sequential(Block(32), Block(32))
        self.out = nn.Linear(32, 3)

    def forward(self, x):
        return self.out(self.blocks(F.relu(self.stem(x))))


def main():
    torch.manual_seed(0)
    X, y = load_wine(return_X_y=True)
    X = torch.tensor((X - X.mean(0)) / X.std(0), dtype=torch.float32)
    y = torch.tensor(y)
    model = Net()
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    for step in range(40):
        idx = torch.randint(0, len(X), (32,))
        opt.zero_grad()
        loss = F.cross_entropy(model(X[idx]), y[idx])
        loss.backward()
        opt.step()
    print(f"loss {loss.item():.3f}")


if __name__ == "__main__":
    main()
