# expect: dtype
# half: tune
# source: DeepCrime "change data type / precision" mutation class; forum reports of sensor or timestamp columns stored as float16 "to save memory" (float16 has 11 bits of mantissa: its spacing is 2.0 between 2048 and 4096)
# fault: the six readings (~3000, the class signal a +-0.45 deviation) are stored as float16 before scaling; at that magnitude float16 rounds to multiples of 2, the informative deviation is rounded away and the classifier stays near chance.
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
raw = raw.astype(np.float16)                                # "to save memory"
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
