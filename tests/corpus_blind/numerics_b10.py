# expect: numerics
# half: holdout
# source: blind corpus (the description of this script is kept outside the repository)
import os

import numpy as np
import torch
import torch.nn as nn

SEED = int(os.environ.get("NNDOCTOR_SEED", "0"))


class BatchStandardize(nn.Module):
    """Standardises each feature with the statistics of the current batch (no running stats)."""

    def forward(self, x):
        mean = x.mean(dim=0)
        var = (x * x).mean(dim=0) - mean * mean
        return (x - mean) / torch.sqrt(var + 1e-5)


class StormNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.norm = BatchStandardize()
        self.mlp = nn.Sequential(nn.Linear(4, 32), nn.ReLU(), nn.Linear(32, 2))

    def forward(self, x):
        return self.mlp(self.norm(x))


def weather(n, rng):
    """Station pressure (Pa), its 3 h change (Pa), temperature (C), wind (m/s); label: storm within 12 h."""
    pressure = rng.normal(101325.0, 60.0, size=n)
    change = rng.normal(0.0, 80.0, size=n)
    temp = rng.normal(15.0, 6.0, size=n)
    wind = rng.gamma(2.0, 3.0, size=n)
    risk = -(pressure - 101325.0) / 60.0 - change / 80.0 + 0.1 * (wind - 6.0)
    label = (risk + rng.normal(0, 0.5, size=n) > 0.8).astype(np.int64)
    return np.stack([pressure, change, temp, wind], axis=1).astype(np.float32), label


def main():
    torch.manual_seed(SEED)
    rng = np.random.default_rng(SEED)
    Xtr, ytr = map(torch.from_numpy, weather(3000, rng))
    Xte, yte = map(torch.from_numpy, weather(1000, rng))
    model = StormNet()
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    for epoch in range(10):
        for b in torch.randperm(len(Xtr)).split(100):
            opt.zero_grad()
            loss = nn.functional.cross_entropy(model(Xtr[b]), ytr[b])
            loss.backward()
            opt.step()
    with torch.no_grad():
        acc = (model(Xte).argmax(1) == yte).float().mean().item()
    print(f"final: acc={acc:.4f}")


if __name__ == "__main__":
    main()
