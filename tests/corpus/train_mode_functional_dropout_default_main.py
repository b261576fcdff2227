# expect: train-mode
# F.dropout(h, 0.5) in forward keeps its default training=True: model.eval() does not turn it off, validation is noisy.
import torch
import torch.nn as nn
import torch.nn.functional as F
from sklearn.datasets import load_digits
from torch.utils.data import DataLoader, TensorDataset


class Classifier(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(64, 128)
        self.fc2 = nn.Linear(128, 64)
        self.out = nn.Linear(64, 10)

    def forward(self, x):
        x = F.dropout(F.relu(self.fc1(x)), 0.5)
        x = F.dropout(F.relu(self.fc2(x)), 0.5)
        return self.out(x)


def main():
    torch.manual_seed(0)
    X, y = load_digits(return_X_y=True)
    X = torch.tensor(X, dtype=torch.float32) / 16.0
    y = torch.tensor(y)
    train = DataLoader(TensorDataset(X[:1400], y[:1400]), batch_size=64, shuffle=True)
    val = DataLoader(TensorDataset(X[1400:], y[1400:]), batch_size=128)
    model = Classifier()
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    for epoch in range(4):
        model.train()
        for xb, yb in train:
            opt.zero_grad()
            loss = F.cross_entropy(model(xb), yb)
            loss.backward()
            opt.step()
        model.eval()
        correct = 0
        with torch.no_grad():
            for xb, yb in val:
                correct += (model(xb).argmax(1) == yb).sum().item()
        print(f"epoch {epoch} loss {loss.item():.3f} val acc {correct / 397:.3f}")


if __name__ == "__main__":
    main()
