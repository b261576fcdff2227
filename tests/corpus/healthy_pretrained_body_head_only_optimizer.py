# expect: healthy
# Pretrain a digits MLP on digits 0-4, then fit a new 10-class head with an optimizer over the head only (the body is not frozen, but it holds pretrained weights: a feature extractor on purpose).
import torch
import torch.nn as nn
from sklearn.datasets import load_digits

torch.manual_seed(0)
digits = load_digits()
X = torch.tensor(digits.data / 16.0, dtype=torch.float32)
y = torch.tensor(digits.target)
first = y < 5

body = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 32), nn.ReLU())
pre_head = nn.Linear(32, 5)
pre_opt = torch.optim.Adam(list(body.parameters()) + list(pre_head.parameters()), lr=3e-3)
loss_fn = nn.CrossEntropyLoss()
Xa, ya = X[first], y[first]
for epoch in range(8):
    for i in range(0, len(Xa), 64):
        pre_opt.zero_grad()
        loss = loss_fn(pre_head(body(Xa[i:i + 64])), ya[i:i + 64])
        loss.backward()
        pre_opt.step()
del pre_opt

head = nn.Linear(32, 10)
opt = torch.optim.Adam(head.parameters(), lr=3e-3)
perm = torch.randperm(len(X))
for epoch in range(8):
    for i in range(0, len(X), 64):
        idx = perm[i:i + 64]
        opt.zero_grad()
        loss = loss_fn(head(body(X[idx])), y[idx])
        loss.backward()
        opt.step()
    print(f"epoch {epoch} loss {loss.item():.3f}")
