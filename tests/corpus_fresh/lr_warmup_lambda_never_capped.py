# expect: lr
# half: tune
# source: forums "loss explodes after warmup" (LambdaLR warmup written as step / warmup_steps without min(1, ...), so the multiplier keeps growing after the warmup)
# fault: the warmup factor (step + 1) / 20 is never capped at 1; after 400 steps Adam runs at 20x its base lr and keeps climbing.
import os

import torch
import torch.nn as nn
import torch.nn.functional as F
from sklearn.datasets import load_digits

SEED = int(os.environ.get("NNDOCTOR_SEED", "0"))
WARMUP = 20

torch.manual_seed(SEED)
X, y = load_digits(return_X_y=True)
X = torch.tensor(X / 16.0, dtype=torch.float32)
y = torch.tensor(y)
perm = torch.randperm(len(X))
tr, te = perm[:1400], perm[1400:]

model = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10))
opt = torch.optim.Adam(model.parameters(), lr=5e-3)
sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: (step + 1) / WARMUP)
for epoch in range(12):
    order = tr[torch.randperm(len(tr))]
    for i in range(0, len(order), 32):
        b = order[i:i + 32]
        opt.zero_grad()
        F.cross_entropy(model(X[b]), y[b]).backward()
        opt.step()
        sched.step()

with torch.no_grad():
    acc = (model(X[te]).argmax(1) == y[te]).float().mean().item()
print(f"final: acc={acc:.4f}")
