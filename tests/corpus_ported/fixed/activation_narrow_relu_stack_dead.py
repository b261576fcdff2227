# expect: healthy
# half: tune
# fixed twin of ../activation_narrow_relu_stack_dead.py: LeakyReLU keeps a gradient for negative inputs.
import os

import torch
import torch.nn as nn
from sklearn.datasets import make_circles

SEED = int(os.environ.get("NNDOCTOR_SEED", "0"))
torch.manual_seed(SEED)

X, y = make_circles(n_samples=800, noise=0.08, factor=0.5, random_state=SEED)
X, y = torch.tensor(X, dtype=torch.float32), torch.tensor(y)

Act = nn.LeakyReLU
layers = [nn.Linear(2, 3), Act()]
for _ in range(7):
    layers += [nn.Linear(3, 3), Act()]
model = nn.Sequential(*layers, nn.Linear(3, 2))

opt = torch.optim.Adam(model.parameters(), lr=1e-2)
for epoch in range(15):
    perm = torch.randperm(600)
    for i in range(0, 600, 50):
        b = perm[i:i + 50]
        opt.zero_grad()
        nn.functional.cross_entropy(model(X[b]), y[b]).backward()
        opt.step()

with torch.no_grad():
    acc = (model(X[600:]).argmax(1) == y[600:]).float().mean().item()
print(f"final: acc={acc:.4f}")
