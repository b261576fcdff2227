# expect: healthy
# A balanced binary task with tiny shuffled batches (many batches hold one class) and BCEWithLogitsLoss.
import torch
import torch.nn as nn
from torch.utils.data import DataLoader, TensorDataset

torch.manual_seed(0)
X = torch.randn(800, 10)
y = (X[:, 0] + 0.5 * X[:, 1] > 0).float()
loader = DataLoader(TensorDataset(X[:640], y[:640]), batch_size=4, shuffle=True)
model = nn.Sequential(nn.Linear(10, 16), nn.ReLU(), nn.Linear(16, 1))
opt = torch.optim.Adam(model.parameters(), lr=3e-3)
criterion = nn.BCEWithLogitsLoss()
for epoch in range(2):
    for xb, yb in loader:
        loss = criterion(model(xb).squeeze(1), yb)
        opt.zero_grad()
        loss.backward()
        opt.step()
with torch.no_grad():
    acc = ((model(X[640:]).squeeze(1) > 0).float() == y[640:]).float().mean().item()
print(f"final loss {loss.item():.4f} accuracy {acc:.3f}")
