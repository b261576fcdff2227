# expect: healthy
# Hidden layers kept in nn.ModuleList (registered), plus a frozen helper kept out of the model on purpose
# (a list holding a frozen projection used under no_grad).
import torch
import torch.nn as nn
import torch.nn.functional as F
from sklearn.datasets import load_digits


class DeepMLP(nn.Module):
    def __init__(self, sizes=(64, 48, 32)):
        super().__init__()
        self.hidden = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:]))
        self.out = nn.Linear(sizes[-1], 10)

    def forward(self, x):
        for layer in self.hidden:
            x = F.relu(layer(x))
        return self.out(x)


def main():
    torch.manual_seed(0)
    X, y = load_digits(return_X_y=True)
    X = torch.tensor(X / 16.0, dtype=torch.float32)
    y = torch.tensor(y)
    model = DeepMLP()
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    for epoch in range(3):
        for i in range(0, 1400, 50):
            loss = F.cross_entropy(model(X[i:i + 50]), y[i:i + 50])
            opt.zero_grad()
            loss.backward()
            opt.step()


if __name__ == "__main__":
    main()
