# expect: init
# Wine MLP (subclass, main(), Adam) whose LayerNorm weights are zero-initialised in a plain stack (the residual zero-gamma trick without a residual): every sample gets the same output.
import torch
import torch.nn as nn
import torch.nn.functional as F
from sklearn.datasets import load_wine


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1, self.norm1 = nn.Linear(13, 32), nn.LayerNorm(32)
        self.fc2, self.norm2 = nn.Linear(32, 32), nn.LayerNorm(32)
        self.out = nn.Linear(32, 3)
        for norm in (self.norm1, self.norm2):
            nn.init.zeros_(norm.weight)

    def forward(self, x):
        x = F.relu(self.norm1(self.fc1(x)))
        x = F.relu(self.norm2(self.fc2(x)))
        return self.out(x)


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
