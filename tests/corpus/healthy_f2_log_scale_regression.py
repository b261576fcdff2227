# expect: healthy
# Regression on a log scale done right: a softplus output (always > 0) before the log, and an auxiliary term whose weight has a finite default.
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

torch.manual_seed(0)
X = torch.rand(500, 6) * 2
Y = torch.exp(X @ torch.tensor([0.5, -0.3, 0.2, 0.1, 0.0, 0.4])).unsqueeze(1)

model = nn.Sequential(nn.Linear(6, 32), nn.Tanh(), nn.Linear(32, 1))
opt = torch.optim.Adam(model.parameters(), lr=1e-2)
history: list[float] = []
for epoch in range(6):
    alpha = float(np.mean(history)) if history else 0.01
    for i in range(0, 500, 25):
        out = model(X[i:i + 25])
        pred = F.softplus(out) + 1e-6
        loss = ((torch.log(pred) - torch.log(Y[i:i + 25])) ** 2).mean() + alpha * 1e-3 * out.pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    history.append(0.01)
print(f"final loss {loss.item():.4f}")
