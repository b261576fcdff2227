# expect: train-mode
# Validation batches run under torch.no_grad() but without model.eval(): BatchNorm statistics absorb validation data.
import torch
import torch.nn as nn
from torch.utils.data import DataLoader, TensorDataset

torch.manual_seed(0)
X = torch.randn(1200, 16)
y = (X[:, 0] * X[:, 1] + X[:, 2] > 0).long()
train_loader = DataLoader(TensorDataset(X[:960], y[:960]), batch_size=64, shuffle=True)
val_loader = DataLoader(TensorDataset(X[960:], y[960:]), batch_size=80)

model = nn.Sequential(
    nn.Linear(16, 64), nn.BatchNorm1d(64), nn.ReLU(),
    nn.Linear(64, 64), nn.BatchNorm1d(64), nn.ReLU(),
    nn.Linear(64, 2),
)
optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
criterion = nn.CrossEntropyLoss()

for epoch in range(3):
    model.train()
    for xb, yb in train_loader:
        optimizer.zero_grad()
        loss = criterion(model(xb), yb)
        loss.backward()
        optimizer.step()
    correct = 0
    with torch.no_grad():
        for xb, yb in val_loader:
            correct += (model(xb).argmax(1) == yb).sum().item()
    print(f"epoch {epoch} loss {loss.item():.3f} val acc {correct / 240:.3f}")
