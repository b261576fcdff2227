# expect: healthy
# half: holdout
# fixed twin of ../regularization_l1_penalty_summed.py: the L1 term is averaged over the weights.
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

model = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 10))
opt = torch.optim.SGD(model.parameters(), lr=0.05)
l1_lambda = 0.01


def l1_penalty(net):
    return sum(p.abs().sum() for p in net.parameters()) / sum(p.numel() for p in net.parameters())


for epoch in range(5):
    order = tr[torch.randperm(len(tr))]
    for i in range(0, len(order), 50):
        b = order[i:i + 50]
        data_loss = nn.functional.cross_entropy(model(X[b]), y[b])
        loss = data_loss + l1_lambda * l1_penalty(model)
        opt.zero_grad()
        loss.backward()
        opt.step()

with torch.no_grad():
    acc = (model(X[te]).argmax(1) == y[te]).float().mean().item()
print(f"final: acc={acc:.4f}")
