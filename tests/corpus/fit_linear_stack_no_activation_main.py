# expect: fit
# A "deep" classifier whose hidden layers were stacked without any activation (Linear -> Linear -> Linear, nn.Module subclass, main(), SGD): it is a linear model, and the classes (two interleaved half-moons) are not linearly separable.
import torch
import torch.nn as nn
import torch.nn.functional as F
from sklearn.datasets import make_moons


class Classifier(nn.Module):
    def __init__(self, n_in, hidden=64):
        super().__init__()
        self.inp = nn.Linear(n_in, hidden)
        self.hidden = nn.Linear(hidden, hidden)
        self.out = nn.Linear(hidden, 2)

    def forward(self, x):
        return self.out(self.hidden(self.inp(x)))


def main():
    torch.manual_seed(0)
    x, y = make_moons(n_samples=1500, noise=0.08, random_state=0)
    x = torch.tensor(x, dtype=torch.float32)
    y = torch.tensor(y)
    model = Classifier(x.shape[1])
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    for epoch in range(8):
        perm = torch.randperm(1200)
        for i in range(0, 1200, 40):
            idx = perm[i:i + 40]
            loss = F.cross_entropy(model(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
        with torch.no_grad():
            acc = (model(x[1200:]).argmax(1) == y[1200:]).float().mean().item()
        print(f"epoch {epoch} loss {loss.item():.3f} val acc {acc:.3f}")


if __name__ == "__main__":
    main()
