# expect: healthy
# half: tune
# source: lookalike of zero-grad faults; gradient accumulation as documented in many tutorials (loss / ACCUM, zero_grad and step every ACCUM micro-batches)
# fault: none. zero_grad() runs only every 4 micro-batches on purpose: the gradients of 4 micro-batches of 16 are summed (each loss divided by 4) to emulate a batch of 64.
import os

import torch
import torch.nn as nn
from sklearn.datasets import load_breast_cancer

SEED = int(os.environ.get("NNDOCTOR_SEED", "0"))
ACCUM = 4

torch.manual_seed(SEED)
X, y = load_breast_cancer(return_X_y=True)
perm = torch.randperm(len(X)).numpy()
X, y = X[perm], y[perm]
X = (X - X[:450].mean(0)) / X[:450].std(0)
X = torch.tensor(X, dtype=torch.float32)
y = torch.tensor(y, dtype=torch.float32).unsqueeze(1)

model = nn.Sequential(nn.Linear(30, 32), nn.ReLU(), nn.Linear(32, 1))
opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
loss_fn = nn.BCEWithLogitsLoss()
step = 0
for epoch in range(10):
    order = torch.randperm(450)
    opt.zero_grad()
    for i in range(0, 448, 16):
        b = order[i:i + 16]
        loss = loss_fn(model(X[b]), y[b]) / ACCUM
        loss.backward()
        step += 1
        if step % ACCUM == 0:
            opt.step()
            opt.zero_grad()

with torch.no_grad():
    acc = ((model(X[450:]) > 0).float() == y[450:]).float().mean().item()
print(f"final: acc={acc:.4f}")
