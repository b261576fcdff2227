# expect: healthy
# Noisy small-batch training: batch size 4, plain SGD at a modest lr on a two-moons style problem; the loss is jumpy but falls.
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

torch.manual_seed(0)


def two_moons(n):
    t = torch.rand(n) * math.pi
    upper = torch.stack([torch.cos(t), torch.sin(t)], 1)
    lower = torch.stack([1 - torch.cos(t), 0.5 - torch.sin(t)], 1)
    x = torch.cat([upper, lower]) + 0.1 * torch.randn(2 * n, 2)
    y = torch.cat([torch.zeros(n), torch.ones(n)]).long()
    return (x - x.mean(0)) / x.std(0), y


X, y = two_moons(300)
model = nn.Sequential(nn.Linear(2, 32), nn.Tanh(), nn.Linear(32, 32), nn.Tanh(), nn.Linear(32, 2))
opt = torch.optim.SGD(model.parameters(), lr=0.05)

losses = []
for epoch in range(3):
    perm = torch.randperm(len(X))
    for i in range(0, len(X), 4):
        idx = perm[i:i + 4]
        out = model(X[idx])
        loss = F.cross_entropy(out, y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    print(f"epoch {epoch}: mean loss {sum(losses[-150:]) / 150:.4f}")

with torch.no_grad():
    acc = (model(X).argmax(1) == y).float().mean().item()
print(f"final loss {sum(losses[-150:]) / 150:.4f} accuracy {acc:.3f}")
