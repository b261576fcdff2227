# expect: healthy
# half: holdout
# source: blind corpus (the description of this script is kept outside the repository)
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

SEED = int(os.environ.get("NNDOCTOR_SEED", "0"))

torch.manual_seed(SEED)
rng = np.random.default_rng(SEED)
X = rng.normal(0, 1, size=(3000, 6)).astype(np.float32)
y = (np.tanh(X[:, 0]) + 0.5 * X[:, 1] * X[:, 2]).astype(np.float32)
# readings from the old sensor are noisy: they count for less
old_sensor = rng.random(3000) < 0.4
y_obs = y + np.where(old_sensor, rng.normal(0, 1.0, 3000), rng.normal(0, 0.05, 3000)).astype(np.float32)
weight = np.where(old_sensor, 0.05, 1.0).astype(np.float32)

Xt, yt, wt = torch.from_numpy(X), torch.from_numpy(y_obs).unsqueeze(1), torch.from_numpy(weight).view(-1, 1)
loader = DataLoader(TensorDataset(Xt[:2400], yt[:2400], wt[:2400]), batch_size=64, shuffle=True)
model = nn.Sequential(nn.Linear(6, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 1))
opt = torch.optim.Adam(model.parameters(), lr=2e-3)
for epoch in range(15):
    for xb, yb, wb in loader:
        pred = model(xb)
        loss = (F.mse_loss(pred, yb, reduction="none") * wb).sum() / wb.sum()
        opt.zero_grad()
        loss.backward()
        opt.step()

with torch.no_grad():
    mse = F.mse_loss(model(Xt[2400:]).squeeze(1), torch.from_numpy(y[2400:])).item()
print(f"final: mse={mse:.4f}")
