# expect: labels
# half: holdout
# source: blind corpus (the description of this script is kept outside the repository)
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from sklearn.datasets import load_digits

SEED = int(os.environ.get("NNDOCTOR_SEED", "0"))


class SmallCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 16, 3, padding=1)
        self.conv2 = nn.Conv2d(16, 32, 3, padding=1)
        self.fc = nn.Linear(32 * 2 * 2, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        return self.fc(x.flatten(1))


def mixup_batch(x, y, alpha, rng):
    lam = float(rng.beta(alpha, alpha))
    mixed_x = lam * x + (1 - lam) * x[torch.randperm(x.size(0))]
    y_a, y_b = y, y[torch.randperm(x.size(0))]
    return mixed_x, y_a, y_b, lam


torch.manual_seed(SEED)
rng = np.random.default_rng(SEED)
X, y = load_digits(return_X_y=True)
X = torch.tensor(X / 16.0, dtype=torch.float32).view(-1, 1, 8, 8)
y = torch.tensor(y)
perm = torch.randperm(len(X))
Xtr, ytr, Xte, yte = X[perm[:1300]], y[perm[:1300]], X[perm[1300:]], y[perm[1300:]]

model = SmallCNN()
opt = torch.optim.Adam(model.parameters(), lr=2e-3)
for epoch in range(12):
    model.train()
    for b in torch.randperm(len(Xtr)).split(32):
        xb, ya, yb, lam = mixup_batch(Xtr[b], ytr[b], alpha=1.0, rng=rng)
        out = model(xb)
        loss = lam * F.cross_entropy(out, ya) + (1 - lam) * F.cross_entropy(out, yb)
        opt.zero_grad()
        loss.backward()
        opt.step()

model.eval()
with torch.no_grad():
    acc = (model(Xte).argmax(1) == yte).float().mean().item()
print(f"final: acc={acc:.4f}")
