# expect: loss-curve
# half: tune
# source: defects4ml-style configuration bug (optimizer settings copied from a GAN/RL critic with maximize=True); symptom "training loss increases every epoch"
# fault: the classifier's AdamW was created with maximize=True, so each step climbs the loss it should descend.
import os

import torch
import torch.nn as nn
from sklearn.datasets import load_breast_cancer
from torch.utils.data import DataLoader, TensorDataset

SEED = int(os.environ.get("NNDOCTOR_SEED", "0"))
torch.manual_seed(SEED)

X, y = load_breast_cancer(return_X_y=True)
X = torch.tensor((X - X.mean(0)) / X.std(0), dtype=torch.float32)
y = torch.tensor(y, dtype=torch.float32)
perm = torch.randperm(len(X))
train = DataLoader(TensorDataset(X[perm[:450]], y[perm[:450]]), batch_size=32, shuffle=True)
X_te, y_te = X[perm[450:]], y[perm[450:]]

OPT_KW = dict(lr=3e-3, weight_decay=1e-4, maximize=True)
model = nn.Sequential(nn.Linear(30, 32), nn.ReLU(), nn.Linear(32, 1))
optimizer = torch.optim.AdamW(model.parameters(), **OPT_KW)
criterion = nn.BCEWithLogitsLoss()
for epoch in range(8):
    for xb, yb in train:
        optimizer.zero_grad()
        loss = criterion(model(xb).squeeze(-1), yb)
        loss.backward()
        optimizer.step()

with torch.no_grad():
    acc = ((model(X_te).squeeze(-1) > 0).float() == y_te).float().mean().item()
print(f"final: acc={acc:.4f}")
