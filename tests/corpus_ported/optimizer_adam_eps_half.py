# expect: optimizer
# half: tune
# source: DeepFD "optimizer hyper-parameter" fault / PyTorch forum "Adam with a large eps learns nothing" (eps copied from a different parameterisation)
# fault: Adam(eps=0.5) divides by sqrt(v) + 0.5 instead of ~sqrt(v): with gradients ~1e-2 the steps shrink ~50x and the classifier barely trains.
import os

import torch
import torch.nn as nn
from sklearn.datasets import load_digits

SEED = int(os.environ.get("NNDOCTOR_SEED", "0"))
torch.manual_seed(SEED)

X, y = load_digits(return_X_y=True)
X = torch.tensor(X / 16.0, dtype=torch.float32)
y = torch.tensor(y)
perm = torch.randperm(len(X))
tr, te = perm[:1400], perm[1400:]

model = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10))
opt = torch.optim.Adam(model.parameters(), lr=1e-3, eps=0.5)
for epoch in range(4):
    order = tr[torch.randperm(len(tr))]
    for i in range(0, len(order), 50):
        b = order[i:i + 50]
        opt.zero_grad()
        loss = nn.functional.cross_entropy(model(X[b]), y[b])
        loss.backward()
        opt.step()

with torch.no_grad():
    acc = (model(X[te]).argmax(1) == y[te]).float().mean().item()
print(f"final: acc={acc:.4f}")
