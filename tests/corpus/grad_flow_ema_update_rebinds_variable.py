# expect: grad-flow
# A tabular classifier (nn.Module, main()) with a Polyak/EMA copy for evaluation; the EMA update assigns to the loop variable (`e = d * e + (1 - d) * p`), so the evaluated copy never leaves its initial weights.
import copy

import torch
import torch.nn as nn
import torch.nn.functional as F
from sklearn.datasets import load_breast_cancer


class Classifier(nn.Module):
    def __init__(self, d_in):
        super().__init__()
        self.hidden = nn.Linear(d_in, 32)
        self.out = nn.Linear(32, 2)

    def forward(self, x):
        return self.out(F.relu(self.hidden(x)))


def main():
    torch.manual_seed(0)
    X, y = load_breast_cancer(return_X_y=True)
    X = torch.tensor((X - X.mean(0)) / X.std(0), dtype=torch.float32)
    y = torch.tensor(y)
    X_tr, y_tr, X_va, y_va = X[:450], y[:450], X[450:], y[450:]
    model = Classifier(X.shape[1])
    ema = copy.deepcopy(model)
    decay = 0.95
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    for epoch in range(6):
        model.train()
        perm = torch.randperm(len(X_tr))
        for i in range(0, len(X_tr), 32):
            idx = perm[i:i + 32]
            loss = F.cross_entropy(model(X_tr[idx]), y_tr[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            with torch.no_grad():
                for e, p in zip(ema.parameters(), model.parameters()):
                    e = decay * e + (1 - decay) * p
        ema.eval()
        with torch.no_grad():
            acc = (ema(X_va).argmax(1) == y_va).float().mean().item()
        print(f"epoch {epoch} loss {loss.item():.3f} ema val acc {acc:.3f}")


if __name__ == "__main__":
    main()
