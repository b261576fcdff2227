# expect: healthy
# half: holdout
# fixed twin of ../preprocessing_standardised_per_row.py: each feature standardised over the samples (axis=0).
import os

import numpy as np
import torch
import torch.nn as nn
from sklearn.datasets import load_breast_cancer

SEED = int(os.environ.get("NNDOCTOR_SEED", "0"))

torch.manual_seed(SEED)
X, y = load_breast_cancer(return_X_y=True)
perm = np.random.default_rng(SEED).permutation(len(X))
X, y = X[perm], y[perm]
X = (X - X.mean(axis=0, keepdims=True)) / X.std(axis=0, keepdims=True)
X = torch.tensor(X, dtype=torch.float32)
y = torch.tensor(y, dtype=torch.float32)

model = nn.Sequential(nn.Linear(30, 32), nn.ReLU(), nn.Linear(32, 1))
opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
for epoch in range(20):
    order = torch.randperm(420)
    for i in range(0, 420, 32):
        b = order[i:i + 32]
        opt.zero_grad()
        nn.functional.binary_cross_entropy_with_logits(model(X[b]).squeeze(1), y[b]).backward()
        opt.step()

with torch.no_grad():
    pred = (model(X[420:]).squeeze(1) > 0).float()
tpr = (pred[y[420:] == 1] == 1).float().mean()
tnr = (pred[y[420:] == 0] == 0).float().mean()
print(f"final: bacc={((tpr + tnr) / 2).item():.4f}")
