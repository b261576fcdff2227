# expect: fit
# A 10-class digits classifier squeezed through a single hidden unit (nn.Module subclass, Adam): it cannot fit the data.
import torch
import torch.nn as nn
import torch.nn.functional as F
from sklearn.datasets import load_digits


class Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        self.enc = nn.Linear(64, 1)
        self.dec = nn.Linear(1, 10)

    def forward(self, x):
        return self.dec(torch.tanh(self.enc(x)))


def main():
    torch.manual_seed(0)
    d = load_digits()
    X = torch.tensor(d.data / 16.0, dtype=torch.float32)
    y = torch.tensor(d.target)
    model = Tiny()
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for epoch in range(12):
        perm = torch.randperm(len(X))
        for i in range(0, len(X) - 50, 50):
            idx = perm[i:i + 50]
            loss = F.cross_entropy(model(X[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
        print(epoch, loss.item())


if __name__ == "__main__":
    main()
