# expect: healthy
# half: tune
# fixed twin of ../dtype_features_stored_float16.py: the readings stay float32.
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

SEED = int(os.environ.get("NNDOCTOR_SEED", "0"))

rng = np.random.default_rng(SEED)
torch.manual_seed(SEED)
n = 1600
y = rng.integers(0, 2, size=n)
shift = np.where(y == 1, 0.45, -0.45)[:, None]
raw = 3000.0 + shift + rng.normal(0, 0.25, size=(n, 6))      # six readings around the nominal 3000
X = raw.astype(np.float32)
X = (X - X[:1200].mean(0)) / (X[:1200].std(0) + 1e-6)
X = torch.tensor(X, dtype=torch.float32)
y = torch.tensor(y)

model = nn.Sequential(nn.Linear(6, 32), nn.ReLU(), nn.Linear(32, 2))
opt = torch.optim.Adam(model.parameters(), lr=5e-3)
for epoch in range(15):
    order = torch.randperm(1200)
    for i in range(0, 1200, 64):
        b = order[i:i + 64]
        opt.zero_grad()
        F.cross_entropy(model(X[b]), y[b]).backward()
        opt.step()

with torch.no_grad():
    acc = (model(X[1200:]).argmax(1) == y[1200:]).float().mean().item()
print(f"final: acc={acc:.4f}")
