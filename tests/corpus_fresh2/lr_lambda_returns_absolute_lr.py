# expect: lr
# half: tune
# source: forum questions "LambdaLR makes my learning rate tiny" (the lambda of LambdaLR returns a MULTIPLIER of the initial lr, not the lr itself)
# fault: LambdaLR(opt, lambda e: 1e-3 * 0.9 ** e) was written as if the lambda returned the lr; it multiplies Adam's 1e-3, so training runs at 1e-6 and below and the classifier barely moves.
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

model = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10))
opt = torch.optim.Adam(model.parameters(), lr=1e-3)
sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda epoch: 1e-3 * 0.9 ** epoch)
for epoch in range(10):
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
