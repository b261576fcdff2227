# expect: preprocessing
# A tabular dataset with missing entries (NaN) in two columns is standardised with nan-aware stats and fed as is.
import numpy as np
import torch
import torch.nn as nn

rng = np.random.default_rng(0)
n = 800
X = rng.normal(size=(n, 6))
y = (X[:, 0] + 0.5 * X[:, 1] - X[:, 4] > 0).astype(np.int64)
X[rng.random(n) < 0.05, 2] = np.nan                 # sensor dropouts
X[rng.random(n) < 0.03, 5] = np.nan
X = (X - np.nanmean(X, 0)) / np.nanstd(X, 0)        # standardised, but the NaNs stay

X_t = torch.tensor(X, dtype=torch.float32)
y_t = torch.tensor(y)
net = nn.Sequential(nn.Linear(6, 32), nn.ReLU(), nn.Linear(32, 2))
opt = torch.optim.SGD(net.parameters(), lr=0.05)
for step in range(60):
    i = (step * 40) % (n - 40)
    opt.zero_grad()
    loss = nn.functional.cross_entropy(net(X_t[i:i + 40]), y_t[i:i + 40])
    loss.backward()
    opt.step()
print("last loss", loss.item())
