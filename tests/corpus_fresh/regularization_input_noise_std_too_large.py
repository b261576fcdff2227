# expect: regularization
# half: tune
# source: DeepCrime / DeepFD fault class "too much regularisation" (Gaussian-noise augmentation std set 10x too high, forum "noise augmentation makes accuracy worse")
# fault: Gaussian noise with std 3.0 is added to inputs standardised to std 1; the signal is buried and the model underfits.
import os

import torch
import torch.nn as nn
from sklearn.datasets import load_digits

SEED = int(os.environ.get("NNDOCTOR_SEED", "0"))
NOISE_STD = 3.0

torch.manual_seed(SEED)
X, y = load_digits(return_X_y=True)
X = torch.tensor(X, dtype=torch.float32)
y = torch.tensor(y)
perm = torch.randperm(len(X))
tr, te = perm[:1400], perm[1400:]
mean, std = X[tr].mean(0), X[tr].std(0) + 1e-6
X = (X - mean) / std

model = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10))
opt = torch.optim.Adam(model.parameters(), lr=1e-3)
loss_fn = nn.CrossEntropyLoss()
for epoch in range(5):
    order = tr[torch.randperm(len(tr))]
    for i in range(0, len(order), 50):
        b = order[i:i + 50]
        xb = X[b] + NOISE_STD * torch.randn_like(X[b])
        opt.zero_grad()
        loss_fn(model(xb), y[b]).backward()
        opt.step()

with torch.no_grad():
    acc = (model(X[te]).argmax(1) == y[te]).float().mean().item()
print(f"final: acc={acc:.4f}")
