# expect: healthy
# A per-batch cosine schedule whose T_max is the total number of batches: the rate reaches ~0 only at the end.
import torch
import torch.nn as nn
import torch.nn.functional as F
from sklearn.datasets import load_digits

torch.manual_seed(0)
X, y = load_digits(return_X_y=True)
X = torch.tensor(X / 16.0, dtype=torch.float32)
y = torch.tensor(y)
model = nn.Sequential(nn.Linear(64, 48), nn.ReLU(), nn.Linear(48, 10))
epochs, batches = 4, 35
opt = torch.optim.Adam(model.parameters(), lr=2e-3)
sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs * batches)
for epoch in range(epochs):
    for i in range(0, 1400, 40):
        loss = F.cross_entropy(model(X[i:i + 40]), y[i:i + 40])
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
