# expect: activation
# half: tune
# source: DeepFD / NeuraLint "wrong activation" class; PyTorch signature pitfall nn.LeakyReLU(negative_slope=0.01, inplace=False), whose first positional argument is the slope (runebook.dev/en/docs/pytorch/generated/torch.nn.leakyrelu/torch.nn.LeakyReLU)
# fault: nn.LeakyReLU(True) was meant as "inplace=True" but sets negative_slope=True=1.0: every activation is the identity, the MLP is a linear model and concentric circles stay at chance.
import os

import torch
import torch.nn as nn
import torch.nn.functional as F
from sklearn.datasets import make_circles

SEED = int(os.environ.get("NNDOCTOR_SEED", "0"))

torch.manual_seed(SEED)
X, y = make_circles(n_samples=800, factor=0.5, noise=0.08, random_state=SEED)
X = torch.tensor(X, dtype=torch.float32)
y = torch.tensor(y)
Xtr, ytr, Xte, yte = X[:600], y[:600], X[600:], y[600:]

model = nn.Sequential(
    nn.Linear(2, 64), nn.LeakyReLU(True),
    nn.Linear(64, 64), nn.LeakyReLU(True),
    nn.Linear(64, 2),
)
opt = torch.optim.Adam(model.parameters(), lr=1e-2)
for epoch in range(20):
    order = torch.randperm(600)
    for i in range(0, 600, 50):
        b = order[i:i + 50]
        opt.zero_grad()
        F.cross_entropy(model(Xtr[b]), ytr[b]).backward()
        opt.step()

with torch.no_grad():
    acc = (model(Xte).argmax(1) == yte).float().mean().item()
print(f"final: acc={acc:.4f}")
