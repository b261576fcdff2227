# expect: healthy
# half: holdout
# fixed twin of ../zero_grad_inside_accumulation_loop.py: zero_grad() right after each step(), so the 4 micro-batch gradients are summed.
import os

import torch
import torch.nn as nn
import torch.nn.functional as F
from sklearn.datasets import load_digits

SEED = int(os.environ.get("NNDOCTOR_SEED", "0"))
ACCUM = 4

torch.manual_seed(SEED)
X, y = load_digits(return_X_y=True)
X = torch.tensor(X / 16.0, dtype=torch.float32)
y = torch.tensor(y)
perm = torch.randperm(len(X))
tr, te = perm[:1400], perm[1400:]

model = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10))
opt = torch.optim.SGD(model.parameters(), lr=0.1)
for epoch in range(3):
    order = tr[torch.randperm(len(tr))]
    for k, i in enumerate(range(0, len(order), 16)):
        b = order[i:i + 16]
        loss = F.cross_entropy(model(X[b]), y[b]) / ACCUM
        loss.backward()
        if (k + 1) % ACCUM == 0:
            opt.step()
            opt.zero_grad()

with torch.no_grad():
    acc = (model(X[te]).argmax(1) == y[te]).float().mean().item()
print(f"final: acc={acc:.4f}")
