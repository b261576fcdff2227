# expect: healthy
# half: tune
# fixed twin of ../init_bn_gamma_zero_plain_stack.py: BatchNorm weights keep their default init of 1.
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

model = nn.Sequential(
    nn.Linear(64, 64), nn.BatchNorm1d(64), nn.ReLU(),
    nn.Linear(64, 64), nn.BatchNorm1d(64), nn.ReLU(),
    nn.Linear(64, 10),
)
for m in model.modules():
    if isinstance(m, nn.BatchNorm1d):
        nn.init.ones_(m.weight)

opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
loss_fn = nn.CrossEntropyLoss()
for epoch in range(5):
    order = tr[torch.randperm(len(tr))]
    for i in range(0, len(order), 50):
        b = order[i:i + 50]
        opt.zero_grad()
        loss_fn(model(X[b]), y[b]).backward()
        opt.step()

model.eval()
with torch.no_grad():
    acc = (model(X[te]).argmax(1) == y[te]).float().mean().item()
print(f"final: acc={acc:.4f}")
