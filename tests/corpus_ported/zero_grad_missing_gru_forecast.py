# expect: zero-grad
# half: holdout
# source: Stack Overflow "Why do we need to call zero_grad() in PyTorch?" / NeuraLint "missing zero_grad" (gradients accumulate across iterations)
# fault: the GRU forecaster never clears its gradients, so each SGD step uses the sum of every gradient so far and the loss blows up.
import os

import math

import torch
import torch.nn as nn

SEED = int(os.environ.get("NNDOCTOR_SEED", "0"))
torch.manual_seed(SEED)

t = torch.linspace(0, 60, 1500)
series = torch.sin(t) + 0.5 * torch.sin(0.37 * t + 1.0) + 0.05 * torch.randn(1500)
W = 20
windows = series.unfold(0, W + 1, 1)                # (N, W+1)
X, Y = windows[:, :W].unsqueeze(-1), windows[:, W:]
n_train = 1100


class Forecaster(nn.Module):
    def __init__(self):
        super().__init__()
        self.gru = nn.GRU(1, 16, batch_first=True)
        self.out = nn.Linear(16, 1)

    def forward(self, x):
        h, _ = self.gru(x)
        return self.out(h[:, -1])


model = Forecaster()
optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
mse = nn.MSELoss()
for epoch in range(3):
    perm = torch.randperm(n_train)
    for i in range(0, n_train, 50):
        b = perm[i:i + 50]
        loss = mse(model(X[b]), Y[b])
        loss.backward()
        optimizer.step()

with torch.no_grad():
    test_mse = mse(model(X[n_train:]), Y[n_train:]).item()
if not math.isfinite(test_mse):
    test_mse = float("inf")
print(f"final: mse={test_mse:.4f}")
