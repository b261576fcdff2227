# expect: lr
# half: holdout
# source: blind corpus (the description of this script is kept outside the repository)
import os

import numpy as np
import torch
import torch.nn as nn
from torch.optim.lr_scheduler import CosineAnnealingLR

SEED = int(os.environ.get("NNDOCTOR_SEED", "0"))
EPOCHS = 60


def target_fn(x):
    return np.sin(2 * x[:, 0]) * np.cos(x[:, 1]) + 0.3 * x[:, 2] ** 2


torch.manual_seed(SEED)
rng = np.random.default_rng(SEED)
X = rng.uniform(-2, 2, size=(3000, 3)).astype(np.float32)
y = target_fn(X).astype(np.float32)
Xtr, ytr = torch.from_numpy(X[:2400]), torch.from_numpy(y[:2400])
Xte, yte = torch.from_numpy(X[2400:]), torch.from_numpy(y[2400:])

model = nn.Sequential(nn.Linear(3, 64), nn.SiLU(), nn.Linear(64, 64), nn.SiLU(), nn.Linear(64, 1))
opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
sched = CosineAnnealingLR(opt, T_max=10)
for epoch in range(EPOCHS):
    for b in torch.randperm(len(Xtr)).split(64):
        opt.zero_grad()
        loss = nn.functional.mse_loss(model(Xtr[b]).squeeze(1), ytr[b])
        loss.backward()
        opt.step()
    sched.step()

with torch.no_grad():
    mse = nn.functional.mse_loss(model(Xte).squeeze(1), yte).item()
print(f"final: mse={mse:.4f}")
