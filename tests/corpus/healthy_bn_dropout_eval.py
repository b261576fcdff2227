# expect: healthy
# BatchNorm + Dropout MLP that switches model.train() / model.eval() correctly and validates under torch.no_grad().
import torch
import torch.nn as nn
import torch.nn.functional as F
from sklearn.datasets import load_digits


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(64, 128)
        self.bn1 = nn.BatchNorm1d(128)
        self.drop = nn.Dropout(0.3)
        self.fc2 = nn.Linear(128, 64)
        self.bn2 = nn.BatchNorm1d(64)
        self.out = nn.Linear(64, 10)

    def forward(self, x):
        x = self.drop(F.relu(self.bn1(self.fc1(x))))
        x = self.drop(F.relu(self.bn2(self.fc2(x))))
        return self.out(x)


def evaluate(model, x, y):
    model.eval()
    with torch.no_grad():
        logits = model(x)
        loss = F.cross_entropy(logits, y).item()
        acc = (logits.argmax(1) == y).float().mean().item()
    return loss, acc


def main():
    torch.manual_seed(0)
    X, y = load_digits(return_X_y=True)
    X = torch.tensor(X, dtype=torch.float32) / 16.0
    y = torch.tensor(y)
    X_train, y_train, X_val, y_val = X[:1400], y[:1400], X[1400:], y[1400:]
    mu, sigma = X_train.mean(0), X_train.std(0) + 1e-6
    X_train, X_val = (X_train - mu) / sigma, (X_val - mu) / sigma

    model = Net()
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=1e-4)
    for epoch in range(4):
        model.train()
        perm = torch.randperm(len(X_train))
        for i in range(0, len(perm), 64):
            idx = perm[i:i + 64]
            opt.zero_grad()
            loss = F.cross_entropy(model(X_train[idx]), y_train[idx])
            loss.backward()
            opt.step()
        val_loss, val_acc = evaluate(model, X_val, y_val)
        print(f"epoch {epoch} train loss {loss.item():.3f} val loss {val_loss:.3f} val acc {val_acc:.3f}")
    print(f"final loss {loss.item():.4f} val accuracy {val_acc:.3f}")


if __name__ == "__main__":
    main()
