# expect: grad
# half: holdout
# source: AUTOTRAINER "vanishing gradient" (a deep plain tanh stack with default init; the fix in the benchmark: skip connections / normalisation)
# fault: 14 plain tanh layers with PyTorch's default init shrink the signal ~0.6x per layer; the first layers get gradients ~1e-4 of the last and the net learns slowly.
import os

import torch
import torch.nn as nn
from sklearn.datasets import make_moons

SEED = int(os.environ.get("NNDOCTOR_SEED", "0"))
torch.manual_seed(SEED)


class DeepTanh(nn.Module):
    def __init__(self, width=32, depth=14):
        super().__init__()
        self.inp = nn.Linear(2, width)
        self.layers = nn.ModuleList(nn.Linear(width, width) for _ in range(depth))
        self.out = nn.Linear(width, 2)

    def forward(self, x):
        x = torch.tanh(self.inp(x))
        for layer in self.layers:
            x = torch.tanh(layer(x))
        return self.out(x)


X, y = make_moons(n_samples=800, noise=0.15, random_state=SEED)
X, y = torch.tensor(X, dtype=torch.float32), torch.tensor(y)
model = DeepTanh()
opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
for epoch in range(12):
    perm = torch.randperm(600)
    for i in range(0, 600, 50):
        b = perm[i:i + 50]
        opt.zero_grad()
        nn.functional.cross_entropy(model(X[b]), y[b]).backward()
        opt.step()

with torch.no_grad():
    acc = (model(X[600:]).argmax(1) == y[600:]).float().mean().item()
print(f"final: acc={acc:.4f}")
