# expect: train-mode
# evaluate() calls model.eval() after each epoch and the training loop never calls model.train() again.
import torch
import torch.nn as nn
import torch.nn.functional as F
from sklearn.datasets import load_digits


class MLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(64, 128)
        self.bn1 = nn.BatchNorm1d(128)
        self.drop = nn.Dropout(0.4)
        self.fc2 = nn.Linear(128, 10)

    def forward(self, x):
        return self.fc2(self.drop(F.relu(self.bn1(self.fc1(x)))))


def evaluate(model, X, y):
    model.eval()
    with torch.no_grad():
        return (model(X).argmax(1) == y).float().mean().item()


def main():
    torch.manual_seed(0)
    X, y = load_digits(return_X_y=True)
    X = torch.tensor(X, dtype=torch.float32) / 16.0
    y = torch.tensor(y)
    X_train, y_train, X_val, y_val = X[:1400], y[:1400], X[1400:], y[1400:]
    model = MLP()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    model.train()
    for epoch in range(3):
        perm = torch.randperm(len(X_train))
        for i in range(0, len(X_train), 100):
            idx = perm[i:i + 100]
            opt.zero_grad()
            loss = F.cross_entropy(model(X_train[idx]), y_train[idx])
            loss.backward()
            opt.step()
        print(f"epoch {epoch} loss {loss.item():.3f} val acc {evaluate(model, X_val, y_val):.3f}")


if __name__ == "__main__":
    main()
