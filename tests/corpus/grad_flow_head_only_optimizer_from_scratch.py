# expect: grad-flow
# A digits MLP trained from scratch with the optimizer of a fine-tuning recipe, SGD(model.out.parameters()): the randomly initialised feature layers get gradients but never change.
import torch
import torch.nn as nn
import torch.nn.functional as F
from sklearn.datasets import load_digits


class DigitNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Linear(64, 12), nn.ReLU(), nn.Linear(12, 12), nn.ReLU())
        self.out = nn.Linear(12, 10)

    def forward(self, x):
        return self.out(self.features(x))


torch.manual_seed(0)
digits = load_digits()
X = torch.tensor(digits.data / 16.0, dtype=torch.float32)
y = torch.tensor(digits.target)
X_train, y_train, X_val, y_val = X[:1400], y[:1400], X[1400:], y[1400:]

model = DigitNet()
optimizer = torch.optim.SGD(model.out.parameters(), lr=0.1, momentum=0.9)
for epoch in range(6):
    perm = torch.randperm(len(X_train))
    for i in range(0, len(X_train), 50):
        idx = perm[i:i + 50]
        loss = F.cross_entropy(model(X_train[idx]), y_train[idx])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        acc = (model(X_val).argmax(1) == y_val).float().mean().item()
    print(f"epoch {epoch} loss {loss.item():.3f} val acc {acc:.3f}")
