# expect: regularization
# A hand-written L2 penalty with lam=0.5 inside a loss divided by the accumulation steps before backward:
# (ce + lam * l2) / accum. The penalty is ~5x the data loss and the model cannot fit.
import torch
import torch.nn as nn
import torch.nn.functional as F
from sklearn.datasets import load_digits

torch.manual_seed(0)
X, y = load_digits(return_X_y=True)
X = torch.tensor(X / 16.0, dtype=torch.float32)
y = torch.tensor(y)
model = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10))
opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
lam, accum = 0.5, 2
for epoch in range(3):
    for k, i in enumerate(range(0, 1400, 50)):
        ce = F.cross_entropy(model(X[i:i + 50]), y[i:i + 50])
        l2 = sum((p ** 2).sum() for p in model.parameters())
        loss = (ce + lam * l2) / accum
        loss.backward()
        if k % accum == accum - 1:
            opt.step()
            opt.zero_grad()
