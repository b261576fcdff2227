# expect: healthy
# A hard but clean task: two overlapping classes (make_classification, class_sep=0.8, no label noise), an MLP with Adam.
import torch
import torch.nn as nn
import torch.nn.functional as F
from sklearn.datasets import make_classification

torch.manual_seed(0)
X, y = make_classification(n_samples=1000, n_features=12, n_informative=6, n_redundant=2, n_classes=2,
                           class_sep=0.8, flip_y=0, random_state=8)
X = torch.tensor(X, dtype=torch.float32)
y = torch.tensor(y)
X = (X - X[:800].mean(0)) / X[:800].std(0)

model = nn.Sequential(nn.Linear(12, 64), nn.ReLU(), nn.Linear(64, 2))
opt = torch.optim.Adam(model.parameters(), lr=3e-3)
for epoch in range(6):
    perm = torch.randperm(800)
    for i in range(0, 800, 50):
        idx = perm[i:i + 50]
        loss = F.cross_entropy(model(X[idx]), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        acc = (model(X[800:]).argmax(1) == y[800:]).float().mean().item()
print(f"train loss {loss.item():.4f} test accuracy {acc:.3f}")
