# expect: init
# half: tune
# source: Stack Overflow "nan loss with custom uniform initialisation" (nn.init.uniform_(w) defaults to [0, 1): all-positive weights make activations grow layer by layer)
# fault: every weight is drawn from uniform(0, 1); through 4 ReLU layers of width 64 the activations grow ~30x per layer and training diverges.
import os

import torch
import torch.nn as nn
from sklearn.datasets import load_digits
from torch.utils.data import DataLoader, TensorDataset

SEED = int(os.environ.get("NNDOCTOR_SEED", "0"))
torch.manual_seed(SEED)

X, y = load_digits(return_X_y=True)
X = torch.tensor(X / 16.0, dtype=torch.float32)
y = torch.tensor(y)
perm = torch.randperm(len(X))
X, y = X[perm], y[perm]

model = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(),
                      nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10))
for m in model.modules():
    if isinstance(m, nn.Linear):
        nn.init.uniform_(m.weight)
        nn.init.zeros_(m.bias)

loader = DataLoader(TensorDataset(X[:1400], y[:1400]), batch_size=64, shuffle=True)
opt = torch.optim.Adam(model.parameters(), lr=1e-3)
for epoch in range(6):
    for xb, yb in loader:
        opt.zero_grad()
        loss = nn.functional.cross_entropy(model(xb), yb)
        loss.backward()
        opt.step()

with torch.no_grad():
    acc = (model(X[1400:]).argmax(1) == y[1400:]).float().mean().item()
print(f"final: acc={acc:.4f}")
