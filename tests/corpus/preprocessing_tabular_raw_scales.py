# expect: preprocessing
# Breast-cancer features used raw: areas in the thousands next to ratios around 0.01, no standardisation.
import torch
import torch.nn as nn
import torch.nn.functional as F
from sklearn.datasets import load_breast_cancer
from torch.utils.data import DataLoader, TensorDataset


class Classifier(nn.Module):
    def __init__(self, n_features):
        super().__init__()
        self.hidden = nn.Linear(n_features, 32)
        self.out = nn.Linear(32, 2)

    def forward(self, x):
        return self.out(torch.tanh(self.hidden(x)))


def main():
    torch.manual_seed(0)
    X, y = load_breast_cancer(return_X_y=True)
    X = torch.tensor(X, dtype=torch.float32)
    y = torch.tensor(y, dtype=torch.long)
    loader = DataLoader(TensorDataset(X[:450], y[:450]), batch_size=32, shuffle=True)
    model = Classifier(X.shape[1])
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    for epoch in range(5):
        for xb, yb in loader:
            opt.zero_grad()
            loss = F.cross_entropy(model(xb), yb)
            loss.backward()
            opt.step()
        acc = (model(X[450:]).argmax(1) == y[450:]).float().mean().item()
        print(f"epoch {epoch}: loss {loss.item():.3f} val acc {acc:.3f}")


if __name__ == "__main__":
    main()
