# expect: data
# Digits sorted by label, then split 80/20 without shuffling: classes 8 and 9 only occur in the test set.
import torch
import torch.nn as nn
from sklearn.datasets import load_digits
from torch.utils.data import DataLoader, TensorDataset

torch.manual_seed(0)
digits = load_digits()
order = digits.target.argsort(kind="stable")
x = torch.tensor(digits.data[order], dtype=torch.float32) / 16.0
y = torch.tensor(digits.target[order])
cut = int(0.8 * len(x))
train_loader = DataLoader(TensorDataset(x[:cut], y[:cut]), batch_size=64, shuffle=True)
val_loader = DataLoader(TensorDataset(x[cut:], y[cut:]), batch_size=64)

model = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 10))
optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
criterion = nn.CrossEntropyLoss()
for epoch in range(5):
    for xb, yb in train_loader:
        optimizer.zero_grad()
        criterion(model(xb), yb).backward()
        optimizer.step()
    with torch.no_grad():
        val_loss = sum(criterion(model(xb), yb).item() for xb, yb in val_loader) / len(val_loader)
    print(f"epoch {epoch}: val loss {val_loss:.3f}")
