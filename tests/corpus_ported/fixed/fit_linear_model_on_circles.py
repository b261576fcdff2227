# expect: healthy
# half: tune
# fixed twin of ../fit_linear_model_on_circles.py: one hidden layer of 32 ReLU units.
import os

import torch
import torch.nn as nn
from sklearn.datasets import make_circles
from torch.utils.data import DataLoader, TensorDataset

SEED = int(os.environ.get("NNDOCTOR_SEED", "0"))
torch.manual_seed(SEED)

X, y = make_circles(n_samples=1000, noise=0.1, factor=0.4, random_state=SEED)
X, y = torch.tensor(X, dtype=torch.float32), torch.tensor(y)
loader = DataLoader(TensorDataset(X[:800], y[:800]), batch_size=50, shuffle=True)

HIDDEN = [nn.Linear(2, 32), nn.ReLU()]
model = nn.Sequential(*HIDDEN, nn.Linear(HIDDEN[0].out_features if HIDDEN else 2, 2))
optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
for epoch in range(15):
    for xb, yb in loader:
        optimizer.zero_grad()
        nn.functional.cross_entropy(model(xb), yb).backward()
        optimizer.step()

with torch.no_grad():
    acc = (model(X[800:]).argmax(1) == y[800:]).float().mean().item()
print(f"final: acc={acc:.4f}")
