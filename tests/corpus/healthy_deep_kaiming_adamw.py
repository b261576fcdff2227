# expect: healthy
# A deep (8 hidden layers) ReLU MLP with He init, BatchNorm, dropout 0.3 and AdamW(weight_decay=0.05): trains fine.
import torch
import torch.nn as nn
import torch.nn.functional as F
from sklearn.datasets import load_digits


def block(n_in, n_out):
    lin = nn.Linear(n_in, n_out)
    nn.init.kaiming_normal_(lin.weight, nonlinearity="relu")
    nn.init.zeros_(lin.bias)
    return nn.Sequential(lin, nn.BatchNorm1d(n_out), nn.ReLU(), nn.Dropout(0.3))


def main():
    torch.manual_seed(0)
    d = load_digits()
    X = torch.tensor(d.data, dtype=torch.float32) / 16.0
    X = (X - X.mean(0)) / (X.std(0) + 1e-6)
    y = torch.tensor(d.target)
    model = nn.Sequential(block(64, 64), *[block(64, 64) for _ in range(7)], nn.Linear(64, 10))
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=0.05)
    for epoch in range(1):
        model.train()
        perm = torch.randperm(1500)
        for i in range(0, 1500, 50):
            idx = perm[i:i + 50]
            loss = F.cross_entropy(model(X[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
        model.eval()
        with torch.no_grad():
            acc = (model(X[1500:]).argmax(1) == y[1500:]).float().mean().item()
        print(f"epoch {epoch} loss {loss.item():.3f} val acc {acc:.3f}")


if __name__ == "__main__":
    main()
