# expect: activation
# Wine MLP (subclass, main(), AdamW) whose hidden activation is F.softmax instead of ReLU: each hidden row sums to 1, ~1/48 per unit.
import torch
import torch.nn as nn
import torch.nn.functional as F
from sklearn.datasets import load_wine


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.hidden = nn.Linear(13, 48)
        self.out = nn.Linear(48, 3)

    def forward(self, x):
        return self.out(F.softmax(self.hidden(x), dim=1))


def main():
    torch.manual_seed(0)
    X, y = load_wine(return_X_y=True)
    X = torch.tensor((X - X.mean(0)) / X.std(0), dtype=torch.float32)
    y = torch.tensor(y)
    model = Net()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    for step in range(40):
        idx = torch.randint(0, len(X), (32,))
        opt.zero_grad()
        loss = F.cross_entropy(model(X[idx]), y[idx])
        loss.backward()
        opt.step()
    print(f"loss {loss.item():.3f}")


if __name__ == "__main__":
    main()
