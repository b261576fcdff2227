# expect: loss-input
# half: holdout
# source: Stack Overflow / forum questions "using MSELoss for classification" (a one-unit output regressed onto class indices 0..9 and rounded)
# fault: the digit classifier has ONE output regressed with MSE onto the class index as a number and rounded at test time; class ids are not ordered quantities, the net predicts blurred in-between values and most digits come out wrong.
import os

import torch
import torch.nn as nn
import torch.nn.functional as F
from sklearn.datasets import load_digits

SEED = int(os.environ.get("NNDOCTOR_SEED", "0"))

torch.manual_seed(SEED)
X, y = load_digits(return_X_y=True)
X = torch.tensor(X / 16.0, dtype=torch.float32)
y = torch.tensor(y)
perm = torch.randperm(len(X))
tr, te = perm[:1400], perm[1400:]

model = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 1))
opt = torch.optim.Adam(model.parameters(), lr=3e-3)
for epoch in range(15):
    order = tr[torch.randperm(len(tr))]
    for i in range(0, len(order), 32):
        b = order[i:i + 32]
        opt.zero_grad()
        F.mse_loss(model(X[b]).squeeze(1), y[b].float()).backward()
        opt.step()

with torch.no_grad():
    pred = model(X[te]).squeeze(1).round().clamp(0, 9).long()
acc = (pred == y[te]).float().mean().item()
print(f"final: acc={acc:.4f}")
