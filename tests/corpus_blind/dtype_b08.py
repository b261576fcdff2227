# expect: dtype
# half: holdout
# source: blind corpus (the description of this script is kept outside the repository)
import os

import numpy as np
import torch
import torch.nn as nn
from torch.utils.data import DataLoader, TensorDataset

SEED = int(os.environ.get("NNDOCTOR_SEED", "0"))


def load_readings(n, rng):
    """Greenhouse log: air temperature in kelvin, humidity in %, light in klx; target: growth rate."""
    temp_k = rng.uniform(293.0, 297.0, size=n)
    humidity = rng.uniform(40.0, 80.0, size=n)
    light = rng.uniform(0.0, 20.0, size=n)
    growth = np.sin(3.0 * (temp_k - 295.0)) + 0.02 * (humidity - 60.0) + 0.05 * light
    table = np.stack([temp_k, humidity, light], axis=1)
    return table.astype(np.float16), growth.astype(np.float32)


def main():
    torch.manual_seed(SEED)
    rng = np.random.default_rng(SEED)
    table, growth = load_readings(4000, rng)
    X = table.astype(np.float32)
    X = (X - X[:3200].mean(0)) / X[:3200].std(0)
    Xt, yt = torch.from_numpy(X), torch.from_numpy(growth)
    loader = DataLoader(TensorDataset(Xt[:3200], yt[:3200]), batch_size=64, shuffle=True)
    model = nn.Sequential(nn.Linear(3, 64), nn.Tanh(), nn.Linear(64, 64), nn.Tanh(), nn.Linear(64, 1))
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    for epoch in range(25):
        for xb, yb in loader:
            opt.zero_grad()
            loss = nn.functional.mse_loss(model(xb).squeeze(1), yb)
            loss.backward()
            opt.step()
    with torch.no_grad():
        mse = nn.functional.mse_loss(model(Xt[3200:]).squeeze(1), yt[3200:]).item()
    print(f"final: mse={mse:.4f}")


if __name__ == "__main__":
    main()
