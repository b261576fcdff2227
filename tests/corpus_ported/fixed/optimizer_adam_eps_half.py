# expect: healthy
# half: tune
# fixed twin of ../optimizer_adam_eps_half.py: Adam's default eps (1e-8).
import os

import torch
import torch.nn as nn
from sklearn.datasets import load_diabetes

SEED = int(os.environ.get("NNDOCTOR_SEED", "0"))
torch.manual_seed(SEED)

X, y = load_diabetes(return_X_y=True)
X = torch.tensor((X - X.mean(0)) / X.std(0), dtype=torch.float32)
y = torch.tensor((y - y.mean()) / y.std(), dtype=torch.float32).view(-1, 1)
perm = torch.randperm(len(X))
tr, te = perm[:350], perm[350:]

model = nn.Sequential(nn.Linear(10, 64), nn.ReLU(), nn.Linear(64, 1))
opt = torch.optim.Adam(model.parameters(), lr=3e-3)
for epoch in range(25):
    order = tr[torch.randperm(len(tr))]
    for i in range(0, len(order), 35):
        b = order[i:i + 35]
        opt.zero_grad()
        loss = nn.functional.mse_loss(model(X[b]), y[b])
        loss.backward()
        opt.step()

with torch.no_grad():
    mse = nn.functional.mse_loss(model(X[te]), y[te]).item()
print(f"final: mse={mse:.4f}")
