# expect: healthy
# half: holdout
# source: blind corpus (the description of this script is kept outside the repository)
# fixed twin of ../shape_b01.py
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from sklearn.datasets import make_classification
from torch.utils.data import DataLoader, TensorDataset

SEED = int(os.environ.get("NNDOCTOR_SEED", "0"))
torch.manual_seed(SEED)
rng = np.random.default_rng(SEED)

X, y = make_classification(n_samples=3000, n_features=10, n_informative=6, random_state=SEED)
X = X.astype(np.float32)
y_clean = y.astype(np.float32)
heuristic = X[:, 0] > 0.3
y_weak = y_clean.copy()
y_weak[heuristic] = np.where(rng.random(heuristic.sum()) < 0.8, 1 - y_weak[heuristic], y_weak[heuristic])
confidence = np.where(heuristic, 0.02, 1.0).astype(np.float32)

Xtr, ytr, wtr = torch.from_numpy(X[:2400]), torch.from_numpy(y_weak[:2400]), torch.from_numpy(confidence[:2400])
Xte, yte = torch.from_numpy(X[2400:]), torch.from_numpy(y_clean[2400:])
loader = DataLoader(TensorDataset(Xtr, ytr, wtr), batch_size=64, shuffle=True)

model = nn.Sequential(nn.Linear(10, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 1))
opt = torch.optim.Adam(model.parameters(), lr=2e-3)

for epoch in range(12):
    for xb, yb, wb in loader:
        logits = model(xb)
        per_sample = F.binary_cross_entropy_with_logits(logits, yb.unsqueeze(1), reduction="none")
        loss = (per_sample.squeeze(1) * wb).sum() / wb.sum()
        opt.zero_grad()
        loss.backward()
        opt.step()

with torch.no_grad():
    acc = ((model(Xte).squeeze(1) > 0).float() == yte).float().mean().item()
print(f"final: acc={acc:.4f}")
