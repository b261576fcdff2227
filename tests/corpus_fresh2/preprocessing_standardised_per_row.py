# expect: preprocessing
# half: holdout
# source: NeuraLint / DeepFD "data preprocessing" class; forum questions "StandardScaler gives bad results with axis=1" (each SAMPLE standardised over its own features instead of each feature over the samples)
# fault: the tabular features are standardised per row (mean and std over the 30 features of one sample); the row statistics are dominated by the "area" columns (hundreds to thousands), so every other feature collapses to nearly the same value for all patients.
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
X = (X - X.mean(axis=1, keepdims=True)) / X.std(axis=1, keepdims=True)
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
