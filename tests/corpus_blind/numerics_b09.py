# expect: numerics
# half: holdout
# source: blind corpus (the description of this script is kept outside the repository)
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

SEED = int(os.environ.get("NNDOCTOR_SEED", "0"))


class MeanVarianceNet(nn.Module):
    """Heteroscedastic regression: predicts a mean and a variance per sample."""

    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(1, 64), nn.Tanh(), nn.Linear(64, 64), nn.Tanh())
        self.mean_head = nn.Linear(64, 1)
        self.var_head = nn.Linear(64, 1)

    def forward(self, x):
        h = self.body(x)
        mean = self.mean_head(h).squeeze(1)
        var = F.relu(self.var_head(h)).squeeze(1)
        return mean, var


def gaussian_nll(mean, var, target):
    return (0.5 * torch.log(var) + 0.5 * (target - mean) ** 2 / var).mean()


def main():
    torch.manual_seed(SEED)
    rng = np.random.default_rng(SEED)
    x = rng.uniform(-3, 3, size=(2500, 1)).astype(np.float32)
    noise_sd = 0.1 + 0.4 * np.abs(x[:, 0])
    y = (np.sin(x[:, 0]) * 2 + rng.normal(0, 1, size=2500) * noise_sd).astype(np.float32)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    loader = DataLoader(TensorDataset(xt[:2000], yt[:2000]), batch_size=50, shuffle=True)
    model = MeanVarianceNet()
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    for epoch in range(20):
        for xb, yb in loader:
            mean, var = model(xb)
            loss = gaussian_nll(mean, var, yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
    with torch.no_grad():
        mean, _ = model(xt[2000:])
        mse = F.mse_loss(mean, yt[2000:]).item()
    print(f"final: mse={mse:.4f}")


if __name__ == "__main__":
    main()
